"""Account isolation: every implemented IAM operation, tried against one account's resources with
another account's keys (its root, and an admin role there) and with a role of the same account that
has no permissions. All are refused as AWS refuses them, and reading the owner's state back shows
nothing changed.

Another account addressing a resource by ARN gets AccessDenied (IAM has no resource policies, so
nothing can grant it); by name, the name resolves in the caller's own account: NoSuchEntity. Creating
and listing act only in the caller's own account and show nothing of the owner's.
"""

from __future__ import annotations

import json
from typing import Any

import botocore
import pytest
from botocore.exceptions import ClientError

from rolebridge.http import app as _app  # noqa: F401 - registers every operation
from rolebridge.iam.registry import OPERATIONS

OWNER = "330000000001"
OTHER = "330000000002"
ROLE = "iso-role"
POLICY_ARN = f"arn:aws:iam::{OWNER}:policy/iso-policy"
PROVIDER_URL = "https://iso.example.com/oidc"
PROVIDER_ARN = f"arn:aws:iam::{OWNER}:oidc-provider/iso.example.com/oidc"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OWNER}:root"}, "Action": "sts:AssumeRole"}]})
EVIL_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"}, "Action": "sts:AssumeRole"}]})
DOC = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]})
EVIL_DOC = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
TAGS = [{"Key": "owner", "Value": "mallory"}]

BY_ARN, BY_NAME, OWN, CREATE = "by-arn", "by-name", "own-account", "create-in-own-account"

# operation -> (parameters aimed at the owner's resources, how another account is refused)
CASES: dict[str, tuple[dict[str, Any], str]] = {
    "GetOpenIDConnectProvider": ({"OpenIDConnectProviderArn": PROVIDER_ARN}, BY_ARN),
    "DeleteOpenIDConnectProvider": ({"OpenIDConnectProviderArn": PROVIDER_ARN}, BY_ARN),
    "AddClientIDToOpenIDConnectProvider": ({"OpenIDConnectProviderArn": PROVIDER_ARN, "ClientID": "evil"}, BY_ARN),
    "RemoveClientIDFromOpenIDConnectProvider": (
        {"OpenIDConnectProviderArn": PROVIDER_ARN, "ClientID": "sts.amazonaws.com"}, BY_ARN),
    "UpdateOpenIDConnectProviderThumbprint": (
        {"OpenIDConnectProviderArn": PROVIDER_ARN, "ThumbprintList": ["b" * 40]}, BY_ARN),
    "TagOpenIDConnectProvider": ({"OpenIDConnectProviderArn": PROVIDER_ARN, "Tags": TAGS}, BY_ARN),
    "UntagOpenIDConnectProvider": ({"OpenIDConnectProviderArn": PROVIDER_ARN, "TagKeys": ["team"]}, BY_ARN),
    "ListOpenIDConnectProviderTags": ({"OpenIDConnectProviderArn": PROVIDER_ARN}, BY_ARN),
    "GetRole": ({"RoleName": ROLE}, BY_NAME),
    "DeleteRole": ({"RoleName": ROLE}, BY_NAME),
    "UpdateAssumeRolePolicy": ({"RoleName": ROLE, "PolicyDocument": EVIL_TRUST}, BY_NAME),
    "PutRolePolicy": ({"RoleName": ROLE, "PolicyName": "evil", "PolicyDocument": EVIL_DOC}, BY_NAME),
    "GetRolePolicy": ({"RoleName": ROLE, "PolicyName": "inline"}, BY_NAME),
    "DeleteRolePolicy": ({"RoleName": ROLE, "PolicyName": "inline"}, BY_NAME),
    "ListRolePolicies": ({"RoleName": ROLE}, BY_NAME),
    "ListInstanceProfilesForRole": ({"RoleName": ROLE}, BY_NAME),
    "UpdateRole": ({"RoleName": ROLE, "Description": "evil", "MaxSessionDuration": 43200}, BY_NAME),
    "UpdateRoleDescription": ({"RoleName": ROLE, "Description": "evil"}, BY_NAME),
    "TagRole": ({"RoleName": ROLE, "Tags": TAGS}, BY_NAME),
    "UntagRole": ({"RoleName": ROLE, "TagKeys": ["team"]}, BY_NAME),
    "ListRoleTags": ({"RoleName": ROLE}, BY_NAME),
    "PutRolePermissionsBoundary": ({"RoleName": ROLE, "PermissionsBoundary": POLICY_ARN}, BY_NAME),
    "DeleteRolePermissionsBoundary": ({"RoleName": ROLE}, BY_NAME),
    "AttachRolePolicy": ({"RoleName": ROLE, "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}, BY_NAME),
    "DetachRolePolicy": ({"RoleName": ROLE, "PolicyArn": POLICY_ARN}, BY_NAME),
    "ListAttachedRolePolicies": ({"RoleName": ROLE}, BY_NAME),
    "GetPolicy": ({"PolicyArn": POLICY_ARN}, BY_ARN),
    "DeletePolicy": ({"PolicyArn": POLICY_ARN}, BY_ARN),
    "GetPolicyVersion": ({"PolicyArn": POLICY_ARN, "VersionId": "v1"}, BY_ARN),
    "CreatePolicyVersion": ({"PolicyArn": POLICY_ARN, "PolicyDocument": EVIL_DOC, "SetAsDefault": True}, BY_ARN),
    "DeletePolicyVersion": ({"PolicyArn": POLICY_ARN, "VersionId": "v1"}, BY_ARN),
    "SetDefaultPolicyVersion": ({"PolicyArn": POLICY_ARN, "VersionId": "v1"}, BY_ARN),
    "ListPolicyVersions": ({"PolicyArn": POLICY_ARN}, BY_ARN),
    "TagPolicy": ({"PolicyArn": POLICY_ARN, "Tags": TAGS}, BY_ARN),
    "UntagPolicy": ({"PolicyArn": POLICY_ARN, "TagKeys": ["team"]}, BY_ARN),
    "ListPolicyTags": ({"PolicyArn": POLICY_ARN}, BY_ARN),
    "ListEntitiesForPolicy": ({"PolicyArn": POLICY_ARN}, BY_ARN),
    "ListOpenIDConnectProviders": ({}, OWN),
    "ListRoles": ({}, OWN),
    "ListPolicies": ({"Scope": "Local"}, OWN),
    "GetAccountSummary": ({}, OWN),
    "CreateOpenIDConnectProvider": ({"Url": PROVIDER_URL, "ThumbprintList": ["c" * 40],
                                     "ClientIDList": ["sts.amazonaws.com"]}, CREATE),
    "CreateRole": ({"RoleName": ROLE, "AssumeRolePolicyDocument": EVIL_TRUST}, CREATE),
    "CreatePolicy": ({"PolicyName": "iso-policy", "PolicyDocument": EVIL_DOC}, CREATE),
}


def call(client: Any, op: str, params: dict[str, Any]) -> Any:
    return getattr(client, botocore.xform_name(op))(**params)


def owner_state(iam: Any) -> dict[str, Any]:
    """Everything the attacks could touch, read back with the owner's own keys."""
    role = iam.get_role(RoleName=ROLE)["Role"]
    role.pop("RoleLastUsed", None)
    versions = iam.list_policy_versions(PolicyArn=POLICY_ARN)["Versions"]
    return {
        "role": role,
        "inline": {n: iam.get_role_policy(RoleName=ROLE, PolicyName=n)["PolicyDocument"]
                   for n in iam.list_role_policies(RoleName=ROLE)["PolicyNames"]},
        "attached": iam.list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"],
        "role_tags": iam.list_role_tags(RoleName=ROLE)["Tags"],
        "provider": iam.get_open_id_connect_provider(OpenIDConnectProviderArn=PROVIDER_ARN),
        "provider_tags": iam.list_open_id_connect_provider_tags(OpenIDConnectProviderArn=PROVIDER_ARN)["Tags"],
        "providers": iam.list_open_id_connect_providers()["OpenIDConnectProviderList"],
        "policy": iam.get_policy(PolicyArn=POLICY_ARN)["Policy"],
        "versions": {v["VersionId"]: iam.get_policy_version(PolicyArn=POLICY_ARN, VersionId=v["VersionId"])
                     ["PolicyVersion"]["Document"] for v in versions},
        "policy_tags": iam.list_policy_tags(PolicyArn=POLICY_ARN)["Tags"],
        "roles": sorted(r["Arn"] for r in iam.list_roles()["Roles"]),
        "policies": sorted(p["Arn"] for p in iam.list_policies(Scope="Local")["Policies"]),
        "summary": iam.get_account_summary()["SummaryMap"],
    }


def strip_metadata(state: dict[str, Any]) -> dict[str, Any]:
    state["provider"].pop("ResponseMetadata", None)
    return state


@pytest.fixture(scope="module")
def setup(server: Any) -> dict[str, Any]:
    owner = server.client("iam", OWNER)
    owner.create_open_id_connect_provider(Url=PROVIDER_URL, ThumbprintList=["a" * 40],
                                          ClientIDList=["sts.amazonaws.com"], Tags=[{"Key": "team", "Value": "a"}])
    owner.create_policy(PolicyName="iso-policy", PolicyDocument=DOC, Tags=[{"Key": "team", "Value": "a"}])
    owner.create_policy_version(PolicyArn=POLICY_ARN, PolicyDocument=DOC, SetAsDefault=True)
    owner.create_role(RoleName=ROLE, AssumeRolePolicyDocument=TRUST, Description="owned",
                      PermissionsBoundary="arn:aws:iam::aws:policy/IAMFullAccess", Tags=[{"Key": "team", "Value": "a"}])
    owner.put_role_policy(RoleName=ROLE, PolicyName="inline", PolicyDocument=DOC)
    owner.attach_role_policy(RoleName=ROLE, PolicyArn=POLICY_ARN)
    # a role of the owner's account with no permissions at all
    owner.create_role(RoleName="iso-weak", AssumeRolePolicyDocument=TRUST)
    weak = server.client("sts", OWNER).assume_role(
        RoleArn=f"arn:aws:iam::{OWNER}:role/iso-weak", RoleSessionName="weak")["Credentials"]
    # an administrator role in the other account
    other = server.client("iam", OTHER)
    other.create_role(RoleName="iso-admin", AssumeRolePolicyDocument=TRUST.replace(OWNER, OTHER))
    other.attach_role_policy(RoleName="iso-admin", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    admin = server.client("sts", OTHER).assume_role(
        RoleArn=f"arn:aws:iam::{OTHER}:role/iso-admin", RoleSessionName="admin")["Credentials"]

    def session(creds: dict[str, Any]) -> Any:
        return server.client("iam", aws_access_key_id=creds["AccessKeyId"],
                             aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])

    return {"owner": owner, "other_root": other, "other_admin": session(admin), "weak": session(weak),
            "baseline": strip_metadata(owner_state(owner))}


def test_every_implemented_iam_operation_is_covered() -> None:
    implemented = {name for (service, name) in OPERATIONS if service == "iam"}
    assert implemented == set(CASES)


@pytest.mark.parametrize("attacker", ["other_root", "other_admin"])
def test_another_accounts_keys_are_refused(setup: dict[str, Any], attacker: str) -> None:
    client = setup[attacker]
    who = f"arn:aws:iam::{OTHER}:root" if attacker == "other_root" else f"arn:aws:sts::{OTHER}:assumed-role/iso-admin/admin"
    outcomes: dict[str, str] = {}
    for op, (params, how) in CASES.items():
        if how == CREATE:
            continue  # creating acts in the caller's account: test_names_are_per_account
        try:
            result = call(client, op, params)
        except ClientError as exc:
            code, message = exc.response["Error"]["Code"], exc.response["Error"]["Message"]
            outcomes[op] = code
            if how == BY_ARN:
                assert code == "AccessDenied", (op, code, message)
                assert message.startswith(f"User: {who} is not authorized to perform: iam:{op} on resource: "
                                          f"arn:aws:iam::{OWNER}:"), (op, message)
            else:
                assert (how, code) == (BY_NAME, "NoSuchEntity"), (op, code, message)
            continue
        outcomes[op] = "ok"
        assert how == OWN, f"{op} succeeded against the owner's resources"
        text = json.dumps(result, default=str)
        assert OWNER not in text, (op, text)
    assert setup["baseline"] == strip_metadata(owner_state(setup["owner"])), outcomes


def test_a_role_without_permissions_is_refused(setup: dict[str, Any]) -> None:
    weak = setup["weak"]
    for op, (params, _how) in CASES.items():
        with pytest.raises(ClientError) as exc:
            call(weak, op, params)
        code, message = exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]
        assert code == "AccessDenied", (op, code, message)
        assert message.startswith(f"User: arn:aws:sts::{OWNER}:assumed-role/iso-weak/weak is not authorized to "
                                  f"perform: iam:{op} on resource: "), (op, message)
        assert "because no identity-based policy allows the" in message
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert setup["baseline"] == strip_metadata(owner_state(setup["owner"]))


def test_names_are_per_account(setup: dict[str, Any], server: Any) -> None:
    """The other account's same-named role, policy and provider are its own; the owner's are untouched."""
    third = "330000000003"  # not OTHER: the refusal tests above must find no same-named role there
    other = server.client("iam", third)
    for op in ("CreateRole", "CreatePolicy", "CreateOpenIDConnectProvider"):
        result = json.dumps(call(other, op, CASES[op][0]), default=str)
        assert third in result and OWNER not in result
    assert other.get_role(RoleName=ROLE)["Role"]["Arn"] == f"arn:aws:iam::{third}:role/{ROLE}"
    assert other.get_policy(PolicyArn=f"arn:aws:iam::{third}:policy/iso-policy")["Policy"]["DefaultVersionId"] == "v1"
    assert setup["baseline"] == strip_metadata(owner_state(setup["owner"]))

