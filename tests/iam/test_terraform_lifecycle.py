"""The IAM calls the Terraform AWS provider makes for aws_iam_role, aws_iam_policy,
aws_iam_role_policy(_attachment), aws_iam_policy_attachment and aws_iam_openid_connect_provider,
in the order it makes them (internal/service/iam/{role,policy,openid_connect_provider}.go), through
boto3 and its paginators against a live server; a few of the reads through the AWS CLI.

`terraform destroy` of a role starts with ListInstanceProfilesForRole (to remove the role from
its instance profiles) and treats NoSuchEntity there as "already gone"; destroying a policy lists
its versions and deletes the non-default ones first; aws_iam_policy_attachment reads
ListEntitiesForPolicy.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import AWS_CLI, aws_error

ACCOUNT = "350000000001"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]})


def doc(action: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]})


error = aws_error


@pytest.fixture(scope="module")
def iam(server: Any) -> Any:
    return server.client("iam", ACCOUNT)


def role_read(iam: Any, name: str) -> dict[str, Any]:
    """resourceRoleRead: GetRole, inline policies (paged names, then each), attached ARNs (paged)."""
    role = iam.get_role(RoleName=name)["Role"]
    names = iam.get_paginator("list_role_policies").paginate(
        RoleName=name, PaginationConfig={"PageSize": 1}).build_full_result()["PolicyNames"]
    inline = {n: iam.get_role_policy(RoleName=name, PolicyName=n)["PolicyDocument"] for n in names}
    attached = [a["PolicyArn"] for a in iam.get_paginator("list_attached_role_policies").paginate(
        RoleName=name, PaginationConfig={"PageSize": 1}).build_full_result()["AttachedPolicies"]]
    return {"role": role, "inline": inline, "attached": attached}


def role_destroy(iam: Any, name: str) -> None:
    """deleteRole with force_detach_policies: profiles, attachments, inline policies, then the role."""
    profiles = iam.get_paginator("list_instance_profiles_for_role").paginate(
        RoleName=name).build_full_result()["InstanceProfiles"]
    assert profiles == []  # nothing to remove the role from
    for arn in [a["PolicyArn"] for a in iam.get_paginator("list_attached_role_policies").paginate(
            RoleName=name).build_full_result()["AttachedPolicies"]]:
        iam.detach_role_policy(RoleName=name, PolicyArn=arn)
    for policy in iam.get_paginator("list_role_policies").paginate(RoleName=name).build_full_result()["PolicyNames"]:
        iam.delete_role_policy(RoleName=name, PolicyName=policy)
    iam.delete_role(RoleName=name)


def test_role_lifecycle_create_read_destroy(iam: Any) -> None:
    iam.create_role(RoleName="tf-role", Path="/tf/", AssumeRolePolicyDocument=TRUST, Description="made by tf",
                    MaxSessionDuration=7200, Tags=[{"Key": "env", "Value": "dev"}])
    for n in ("b-inline", "a-inline", "c-inline"):
        iam.put_role_policy(RoleName="tf-role", PolicyName=n, PolicyDocument=doc("s3:GetObject"))
    for arn in ("arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::aws:policy/IAMReadOnlyAccess"):
        iam.attach_role_policy(RoleName="tf-role", PolicyArn=arn)
    state = role_read(iam, "tf-role")
    assert state["role"]["RoleLastUsed"] == {}  # present, empty: the role was never used
    assert state["role"]["Tags"] == [{"Key": "env", "Value": "dev"}]
    assert list(state["inline"]) == ["a-inline", "b-inline", "c-inline"]  # paged one by one, in name order
    assert sorted(state["attached"]) == ["arn:aws:iam::aws:policy/IAMReadOnlyAccess",
                                         "arn:aws:iam::aws:policy/ReadOnlyAccess"]
    out = iam.list_instance_profiles_for_role(RoleName="tf-role")
    assert (out["InstanceProfiles"], out["IsTruncated"], "Marker" in out) == ([], False, False)

    with pytest.raises(ClientError) as exc:  # without force_detach_policies AWS refuses, Terraform retries
        iam.delete_role(RoleName="tf-role")
    assert error(exc) == ("DeleteConflict", "Cannot delete entity, must delete policies first.", 409)
    role_destroy(iam, "tf-role")

    # a second destroy (state out of date): every read says NoSuchEntity, which Terraform treats as gone
    with pytest.raises(ClientError) as exc:
        iam.list_instance_profiles_for_role(RoleName="tf-role")
    assert error(exc) == ("NoSuchEntity", "The role with name tf-role cannot be found.", 404)
    with pytest.raises(ClientError) as exc:
        iam.list_role_policies(RoleName="tf-role")
    assert error(exc)[0] == "NoSuchEntity"
    with pytest.raises(ClientError) as exc:
        iam.delete_role(RoleName="tf-role")
    assert error(exc)[0] == "NoSuchEntity"


def test_list_role_policies_markers(iam: Any) -> None:
    iam.create_role(RoleName="tf-inline", AssumeRolePolicyDocument=TRUST)
    for i in range(5):
        iam.put_role_policy(RoleName="tf-inline", PolicyName=f"p{i}", PolicyDocument=doc("s3:GetObject"))
    first = iam.list_role_policies(RoleName="tf-inline", MaxItems=2)
    assert (first["PolicyNames"], first["IsTruncated"]) == (["p0", "p1"], True)
    iam.delete_role_policy(RoleName="tf-inline", PolicyName="p0")  # the boundary stays put
    second = iam.list_role_policies(RoleName="tf-inline", MaxItems=2, Marker=first["Marker"])
    assert second["PolicyNames"] == ["p2", "p3"]
    with pytest.raises(ClientError) as exc:  # a marker we did not issue is refused, not read as "start over"
        iam.list_role_policies(RoleName="tf-inline", Marker="2")
    assert error(exc) == ("ValidationError", "Invalid Marker.", 400)
    with pytest.raises(ClientError) as exc:
        iam.list_instance_profiles_for_role(RoleName="tf-inline", Marker="2")
    assert error(exc)[0] == "ValidationError"


def test_policy_lifecycle_update_and_destroy(iam: Any) -> None:
    arn = iam.create_policy(PolicyName="tf-policy", Path="/tf/", PolicyDocument=doc("s3:GetObject"),
                            Description="d", Tags=[{"Key": "env", "Value": "dev"}])["Policy"]["Arn"]
    policy = iam.get_policy(PolicyArn=arn)["Policy"]
    assert iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])["PolicyVersion"]["Document"]
    assert iam.list_policy_tags(PolicyArn=arn)["Tags"] == [{"Key": "env", "Value": "dev"}]
    # six updates: policyPruneVersions keeps at most 4 before CreatePolicyVersion + SetDefaultPolicyVersion
    for i in range(6):
        versions = iam.get_paginator("list_policy_versions").paginate(
            PolicyArn=arn).build_full_result()["Versions"]
        if len(versions) >= 5:
            oldest = min((v for v in versions if not v["IsDefaultVersion"]), key=lambda v: v["CreateDate"])
            iam.delete_policy_version(PolicyArn=arn, VersionId=oldest["VersionId"])
        new = iam.create_policy_version(PolicyArn=arn, PolicyDocument=doc(f"s3:Get{i}*"),
                                        SetAsDefault=False)["PolicyVersion"]
        assert new["IsDefaultVersion"] is False
        iam.set_default_policy_version(PolicyArn=arn, VersionId=new["VersionId"])
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v7"

    iam.create_role(RoleName="tf-user", AssumeRolePolicyDocument=TRUST)
    iam.attach_role_policy(RoleName="tf-user", PolicyArn=arn)
    versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    for v in versions:
        if not v["IsDefaultVersion"]:
            iam.delete_policy_version(PolicyArn=arn, VersionId=v["VersionId"])
    with pytest.raises(ClientError) as exc:
        iam.delete_policy(PolicyArn=arn)
    assert error(exc) == ("DeleteConflict", "Cannot delete a policy attached to entities.", 409)
    iam.detach_role_policy(RoleName="tf-user", PolicyArn=arn)
    iam.delete_policy(PolicyArn=arn)
    with pytest.raises(ClientError) as exc:  # destroy again: the versions read says it is gone
        iam.list_policy_versions(PolicyArn=arn)
    assert error(exc) == ("NoSuchEntity", f"Policy {arn} does not exist or is not attachable.", 404)


def test_list_entities_for_policy(iam: Any) -> None:
    arn = iam.create_policy(PolicyName="tf-shared", PolicyDocument=doc("s3:ListBucket"))["Policy"]["Arn"]
    for name, path in (("tf-e-b", "/a/"), ("tf-e-a", "/a/"), ("tf-e-c", "/b/")):
        iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=TRUST)
        iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    iam.create_role(RoleName="tf-e-bound", AssumeRolePolicyDocument=TRUST, PermissionsBoundary=arn)
    ids = {r["RoleName"]: r["RoleId"] for r in iam.list_roles()["Roles"]}

    out = iam.list_entities_for_policy(PolicyArn=arn)
    assert out["PolicyGroups"] == [] and out["PolicyUsers"] == [] and out["IsTruncated"] is False
    assert out["PolicyRoles"] == [{"RoleName": n, "RoleId": ids[n]} for n in ("tf-e-a", "tf-e-b", "tf-e-bound",
                                                                              "tf-e-c")]
    names = lambda **kw: [r["RoleName"] for r in iam.list_entities_for_policy(PolicyArn=arn, **kw)["PolicyRoles"]]  # noqa: E731
    assert names(PolicyUsageFilter="PermissionsPolicy") == ["tf-e-a", "tf-e-b", "tf-e-c"]
    assert names(PolicyUsageFilter="PermissionsBoundary") == ["tf-e-bound"]
    assert names(PathPrefix="/a/") == ["tf-e-a", "tf-e-b"]
    assert names(EntityFilter="Role") == ["tf-e-a", "tf-e-b", "tf-e-bound", "tf-e-c"]
    assert names(EntityFilter="User") == [] and names(EntityFilter="Group") == []
    paged = iam.get_paginator("list_entities_for_policy").paginate(
        PolicyArn=arn, PaginationConfig={"PageSize": 1}).build_full_result()
    assert [r["RoleName"] for r in paged["PolicyRoles"]] == ["tf-e-a", "tf-e-b", "tf-e-bound", "tf-e-c"]
    # AWS managed policies list the caller's account's roles only (other accounts' attachments stay out)
    read_only = "arn:aws:iam::aws:policy/ReadOnlyAccess"
    iam.attach_role_policy(RoleName="tf-e-a", PolicyArn=read_only)
    listed = [r["RoleName"] for r in iam.list_entities_for_policy(PolicyArn=read_only)["PolicyRoles"]]
    own = {r["RoleName"] for r in iam.list_roles()["Roles"]}
    assert "tf-e-a" in listed and set(listed) <= own, listed
    iam.detach_role_policy(RoleName="tf-e-a", PolicyArn=read_only)

    missing = f"arn:aws:iam::{ACCOUNT}:policy/tf-nope"
    with pytest.raises(ClientError) as exc:
        iam.list_entities_for_policy(PolicyArn=missing)
    assert error(exc) == ("NoSuchEntity", f"Policy {missing} does not exist or is not attachable.", 404)
    with pytest.raises(ClientError) as exc:
        iam.list_entities_for_policy(PolicyArn=arn, EntityFilter="Robot")
    assert error(exc)[0] == "ValidationError"


def test_provider_lifecycle(iam: Any) -> None:
    url = "https://tf-oidc.example.com/id/ABC"
    arn = iam.create_open_id_connect_provider(Url=url, ClientIDList=["sts.amazonaws.com"],
                                              ThumbprintList=["a" * 40],
                                              Tags=[{"Key": "env", "Value": "dev"}])["OpenIDConnectProviderArn"]
    assert arn == f"arn:aws:iam::{ACCOUNT}:oidc-provider/tf-oidc.example.com/id/ABC"
    got = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert (got["Url"], got["ClientIDList"], got["ThumbprintList"], got["Tags"]) == (
        "tf-oidc.example.com/id/ABC", ["sts.amazonaws.com"], ["a" * 40], [{"Key": "env", "Value": "dev"}])
    # an update: thumbprints replaced, client IDs added then removed (set difference), tags changed
    iam.update_open_id_connect_provider_thumbprint(OpenIDConnectProviderArn=arn, ThumbprintList=["b" * 40])
    iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="other")
    iam.remove_client_id_from_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="sts.amazonaws.com")
    iam.tag_open_id_connect_provider(OpenIDConnectProviderArn=arn, Tags=[{"Key": "team", "Value": "x"}])
    iam.untag_open_id_connect_provider(OpenIDConnectProviderArn=arn, TagKeys=["env"])
    got = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert (got["ClientIDList"], got["ThumbprintList"], got["Tags"]) == (
        ["other"], ["b" * 40], [{"Key": "team", "Value": "x"}])
    assert iam.get_paginator("list_open_id_connect_provider_tags").paginate(
        OpenIDConnectProviderArn=arn).build_full_result()["Tags"] == [{"Key": "team", "Value": "x"}]
    iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    with pytest.raises(ClientError) as exc:  # Terraform treats NoSuchEntity on delete as done
        iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert error(exc) == ("NoSuchEntity", f"OpenId connect Provider {arn} cannot be found.", 404)


def test_aws_cli_reads(server: Any, iam: Any, tmp_path: Path) -> None:
    keys = server.account(ACCOUNT)
    arn = iam.create_policy(PolicyName="tf-cli", PolicyDocument=doc("s3:ListBucket"))["Policy"]["Arn"]
    iam.create_role(RoleName="tf-cli-role", AssumeRolePolicyDocument=TRUST)
    iam.attach_role_policy(RoleName="tf-cli-role", PolicyArn=arn)
    env = server.env(AWS_ACCESS_KEY_ID=keys["access_key_id"], AWS_SECRET_ACCESS_KEY=keys["secret_access_key"],
                     HOME=str(tmp_path))

    def aws(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([AWS_CLI, "iam", *args, "--output", "json"], env=env, capture_output=True, text=True,
                              timeout=120)

    proc = aws("list-instance-profiles-for-role", "--role-name", "tf-cli-role")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"InstanceProfiles": []}  # the CLI drops IsTruncated when it pages
    proc = aws("list-entities-for-policy", "--policy-arn", arn)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [r["RoleName"] for r in out["PolicyRoles"]] == ["tf-cli-role"]
    assert out["PolicyGroups"] == [] and out["PolicyUsers"] == []
    proc = aws("list-instance-profiles-for-role", "--role-name", "tf-cli-missing")
    assert proc.returncode != 0
    assert "An error occurred (NoSuchEntity) when calling the ListInstanceProfilesForRole operation: " \
           "The role with name tf-cli-missing cannot be found." in proc.stderr
