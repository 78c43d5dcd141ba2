"""Roles as real tools drive them: UpdateRole, ListRoles paging, tags; and what an assumed role may do
through attached policies, a permissions boundary and condition keys. A few calls through the AWS CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

ACCOUNT = "340000000001"
AWS_CLI = str(Path(sys.executable).parent / "aws")
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]})


def error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


@pytest.fixture(scope="module")
def iam(server: Any) -> Any:
    return server.client("iam", ACCOUNT)


def as_role(server: Any, role: str, service: str = "iam") -> Any:
    creds = server.client("sts", ACCOUNT).assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role}", RoleSessionName="test")["Credentials"]
    return server.client(service, aws_access_key_id=creds["AccessKeyId"],
                         aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])


def test_update_role_and_description(iam: Any) -> None:
    iam.create_role(RoleName="rs-update", AssumeRolePolicyDocument=TRUST)
    iam.update_role(RoleName="rs-update", Description="first", MaxSessionDuration=7200)
    role = iam.get_role(RoleName="rs-update")["Role"]
    assert (role["Description"], role["MaxSessionDuration"]) == ("first", 7200)
    out = iam.update_role_description(RoleName="rs-update", Description="second")["Role"]
    assert out["Description"] == "second" and out["RoleName"] == "rs-update"
    with pytest.raises(ClientError) as exc:
        iam.update_role(RoleName="rs-update", MaxSessionDuration=43201)
    assert error(exc)[0] == "ValidationError"
    with pytest.raises(ClientError) as exc:
        iam.update_role(RoleName="rs-missing", Description="x")
    assert error(exc) == ("NoSuchEntity", "The role with name rs-missing cannot be found.")


def test_list_roles_path_prefix_and_pagination(iam: Any) -> None:
    for i in range(7):
        iam.create_role(RoleName=f"rs-page-{i}", Path="/paged/", AssumeRolePolicyDocument=TRUST)
    iam.create_role(RoleName="rs-elsewhere", Path="/other/", AssumeRolePolicyDocument=TRUST)
    first = iam.list_roles(PathPrefix="/paged/", MaxItems=3)
    assert [r["RoleName"] for r in first["Roles"]] == ["rs-page-0", "rs-page-1", "rs-page-2"]
    assert first["IsTruncated"] is True
    assert "Tags" not in first["Roles"][0] and "RoleLastUsed" not in first["Roles"][0]
    second = iam.list_roles(PathPrefix="/paged/", MaxItems=3, Marker=first["Marker"])
    assert [r["RoleName"] for r in second["Roles"]] == ["rs-page-3", "rs-page-4", "rs-page-5"]
    everything = iam.get_paginator("list_roles").paginate(
        PathPrefix="/paged/", PaginationConfig={"PageSize": 2}).build_full_result()["Roles"]
    assert [r["RoleName"] for r in everything] == [f"rs-page-{i}" for i in range(7)]
    assert all(r["Path"] == "/paged/" for r in everything)
    # a page boundary stays put when a role before it is deleted
    page = iam.list_roles(PathPrefix="/paged/", MaxItems=2)
    iam.delete_role(RoleName="rs-page-0")
    nxt = iam.list_roles(PathPrefix="/paged/", MaxItems=2, Marker=page["Marker"])
    assert [r["RoleName"] for r in nxt["Roles"]] == ["rs-page-2", "rs-page-3"]


def test_role_tags(iam: Any) -> None:
    iam.create_role(RoleName="rs-tags", AssumeRolePolicyDocument=TRUST, Tags=[{"Key": "a", "Value": "1"}])
    iam.tag_role(RoleName="rs-tags", Tags=[{"Key": "A", "Value": "2"}, {"Key": "b", "Value": "3"}])
    assert iam.list_role_tags(RoleName="rs-tags")["Tags"] == [{"Key": "A", "Value": "2"}, {"Key": "b", "Value": "3"}]
    page = iam.list_role_tags(RoleName="rs-tags", MaxItems=1)
    assert page["IsTruncated"] is True and len(page["Tags"]) == 1
    iam.untag_role(RoleName="rs-tags", TagKeys=["a"])
    assert iam.get_role(RoleName="rs-tags")["Role"]["Tags"] == [{"Key": "b", "Value": "3"}]
    with pytest.raises(ClientError) as exc:
        iam.tag_role(RoleName="rs-tags", Tags=[{"Key": "aws:x", "Value": "1"}])
    assert error(exc)[0] == "InvalidInput"


def test_delete_role_conflicts(iam: Any) -> None:
    iam.create_role(RoleName="rs-del", AssumeRolePolicyDocument=TRUST)
    iam.put_role_policy(RoleName="rs-del", PolicyName="p", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    with pytest.raises(ClientError) as exc:
        iam.delete_role(RoleName="rs-del")
    assert error(exc) == ("DeleteConflict", "Cannot delete entity, must delete policies first.")


def test_assumed_role_permissions_come_from_attached_policies_within_the_boundary(server: Any, iam: Any) -> None:
    iam.create_role(RoleName="rs-admin", AssumeRolePolicyDocument=TRUST)
    iam.attach_role_policy(RoleName="rs-admin", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    admin = as_role(server, "rs-admin")
    assert admin.get_role(RoleName="rs-admin")["Role"]["RoleName"] == "rs-admin"
    admin.tag_role(RoleName="rs-admin", Tags=[{"Key": "k", "Value": "v"}])

    iam.put_role_permissions_boundary(RoleName="rs-admin",
                                      PermissionsBoundary="arn:aws:iam::aws:policy/IAMReadOnlyAccess")
    assert admin.get_role(RoleName="rs-admin")["Role"]["RoleName"] == "rs-admin"  # same session, new rules
    with pytest.raises(ClientError) as exc:
        admin.untag_role(RoleName="rs-admin", TagKeys=["k"])
    assert error(exc)[1].startswith(
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/rs-admin/test is not authorized to perform: iam:UntagRole on "
        f"resource: arn:aws:iam::{ACCOUNT}:role/rs-admin because no permissions boundary allows the iam:UntagRole "
        "action")
    assert iam.list_role_tags(RoleName="rs-admin")["Tags"] == [{"Key": "k", "Value": "v"}]

    # a customer managed policy, versioned: the default version decides
    arn = iam.create_policy(PolicyName="rs-reader", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iam:ListRoles", "Resource": "*"}]}))["Policy"]["Arn"]
    iam.create_role(RoleName="rs-reader", AssumeRolePolicyDocument=TRUST)
    iam.attach_role_policy(RoleName="rs-reader", PolicyArn=arn)
    reader = as_role(server, "rs-reader")
    assert reader.list_roles(MaxItems=1)["Roles"]
    with pytest.raises(ClientError):
        reader.list_policies()
    iam.create_policy_version(PolicyArn=arn, SetAsDefault=True, PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:ListPolicies", "Resource": "*"}]}))
    assert reader.list_policies(MaxItems=1)["Policies"]
    with pytest.raises(ClientError):
        reader.list_roles()
    iam.detach_role_policy(RoleName="rs-reader", PolicyArn=arn)
    with pytest.raises(ClientError):
        reader.list_policies()


def test_condition_keys_of_iam_calls(server: Any, iam: Any) -> None:
    """The common delegation guardrail: may create roles only with a given permissions boundary."""
    boundary = iam.create_policy(PolicyName="rs-guard", PolicyDocument=json.dumps({"Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))["Policy"]["Arn"]
    iam.create_role(RoleName="rs-delegate", AssumeRolePolicyDocument=TRUST)
    iam.put_role_policy(RoleName="rs-delegate", PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["iam:CreateRole", "iam:AttachRolePolicy"], "Resource": "*",
             "Condition": {"StringEquals": {"iam:PermissionsBoundary": boundary}}},
            {"Effect": "Allow", "Action": "iam:AttachRolePolicy", "Resource": "*",
             "Condition": {"ArnLike": {"iam:PolicyARN": "arn:aws:iam::aws:policy/AmazonS3*"}}},
            {"Effect": "Allow", "Action": "iam:TagRole", "Resource": "*",
             "Condition": {"StringEquals": {"aws:ResourceTag/team": "data"}}}]}))
    delegate = as_role(server, "rs-delegate")
    with pytest.raises(ClientError) as exc:
        delegate.create_role(RoleName="rs-made", AssumeRolePolicyDocument=TRUST)
    assert error(exc)[0] == "AccessDenied"
    delegate.create_role(RoleName="rs-made", AssumeRolePolicyDocument=TRUST, PermissionsBoundary=boundary,
                         Tags=[{"Key": "team", "Value": "data"}])
    delegate.attach_role_policy(RoleName="rs-made", PolicyArn="arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")
    with pytest.raises(ClientError) as exc:
        delegate.attach_role_policy(RoleName="rs-made", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    assert error(exc)[0] == "AccessDenied"
    delegate.tag_role(RoleName="rs-made", Tags=[{"Key": "more", "Value": "x"}])
    with pytest.raises(ClientError) as exc:
        delegate.tag_role(RoleName="rs-delegate", Tags=[{"Key": "more", "Value": "x"}])
    assert error(exc)[0] == "AccessDenied"


def test_aws_cli(server: Any, iam: Any, tmp_path: Any) -> None:
    keys = server.account(ACCOUNT)
    iam.create_role(RoleName="rs-cli", AssumeRolePolicyDocument=TRUST)
    env = server.env(AWS_ACCESS_KEY_ID=keys["access_key_id"], AWS_SECRET_ACCESS_KEY=keys["secret_access_key"],
                     HOME=str(tmp_path))

    def aws(*args: str) -> Any:
        proc = subprocess.run([AWS_CLI, *args, "--output", "json"], env=env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout) if proc.stdout.strip() else None

    policies = aws("iam", "list-policies", "--scope", "AWS")["Policies"]
    assert "AdministratorAccess" in {p["PolicyName"] for p in policies}
    aws("iam", "attach-role-policy", "--role-name", "rs-cli", "--policy-arn",
        "arn:aws:iam::aws:policy/ReadOnlyAccess")
    attached = aws("iam", "list-attached-role-policies", "--role-name", "rs-cli")["AttachedPolicies"]
    assert attached == [{"PolicyName": "ReadOnlyAccess", "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}]
    roles = aws("iam", "list-roles", "--page-size", "2")["Roles"]  # the CLI pages through every marker
    assert len(roles) == len(iam.get_paginator("list_roles").paginate().build_full_result()["Roles"])
    creds = aws("sts", "assume-role", "--role-arn", f"arn:aws:iam::{ACCOUNT}:role/rs-cli",
                "--role-session-name", "cli")["Credentials"]
    env.update(AWS_ACCESS_KEY_ID=creds["AccessKeyId"], AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
               AWS_SESSION_TOKEN=creds["SessionToken"])
    assert aws("sts", "get-caller-identity")["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/rs-cli/cli"
    assert aws("iam", "get-role", "--role-name", "rs-cli")["Role"]["RoleName"] == "rs-cli"  # ReadOnlyAccess
    proc = subprocess.run([AWS_CLI, "iam", "delete-role", "--role-name", "rs-cli"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "AccessDenied" in proc.stderr
    assert "is not authorized to perform: iam:DeleteRole" in proc.stderr



def _padded_policy(action: str, size: int) -> str:
    """A compact policy document of exactly ``size`` characters (a long Sid pads it)."""
    doc = {"Version": "2012-10-17", "Statement": [{"Sid": "", "Effect": "Allow", "Action": action, "Resource": "*"}]}
    text = json.dumps(doc, separators=(",", ":"))
    return text.replace('"Sid":""', '"Sid":"' + "A" * (size - len(text)) + '"')


def test_inline_role_policies_are_limited_only_in_aggregate(server: Any, iam: Any) -> None:
    """IAM quota RolePolicySizeQuota: a role's inline policies together may hold 10,240 characters; one
    of them alone is not held to the 6,144 of a managed policy (aws-semantics.md §2.4)."""
    iam.create_role(RoleName="rs-big-inline", AssumeRolePolicyDocument=TRUST)
    big = _padded_policy("iam:GetRole", 7000)
    assert len(big) == 7000
    iam.put_role_policy(RoleName="rs-big-inline", PolicyName="big", PolicyDocument=big)
    assert iam.get_role_policy(RoleName="rs-big-inline", PolicyName="big")["PolicyDocument"]["Statement"][0][
        "Action"] == "iam:GetRole"
    session = as_role(server, "rs-big-inline")  # the stored policy is evaluated, not refused as too long
    assert session.get_role(RoleName="rs-big-inline")["Role"]["RoleName"] == "rs-big-inline"
    with pytest.raises(ClientError) as exc:
        session.list_roles()
    assert error(exc)[0] == "AccessDenied"
    with pytest.raises(ClientError) as exc:  # 7,000 + 3,500 > 10,240 together
        iam.put_role_policy(RoleName="rs-big-inline", PolicyName="more",
                            PolicyDocument=_padded_policy("iam:ListRoles", 3500))
    assert error(exc) == ("LimitExceeded", "Maximum policy size of 10240 bytes exceeded for role rs-big-inline")
    iam.put_role_policy(RoleName="rs-big-inline", PolicyName="more",
                        PolicyDocument=_padded_policy("iam:ListRoles", 3000))
    with pytest.raises(ClientError) as exc:  # a managed policy is still held to 6,144 on its own
        iam.create_policy(PolicyName="rs-big-managed", PolicyDocument=big)
    assert error(exc) == ("LimitExceeded", "Cannot exceed quota for PolicySize: 6144")
