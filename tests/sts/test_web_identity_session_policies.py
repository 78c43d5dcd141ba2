"""Session policies of AssumeRoleWithWebIdentity (``Policy``, ``PolicyArns``) limit the session in IAM
and S3 exactly as AssumeRole's do: the session may do only what its role's policies and the session
policies both allow (aws-semantics.md §4.8). And ``PolicyArns`` is checked the same way on both
calls: at most 10, each a managed policy the role's account can attach (§1.2)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import aws_error
from s3.s3_helpers import s3_client

ACCOUNT = "581000000001"
OTHER = "581000000002"
BUCKET = "wi-session-policy"
GET_ONLY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["iam:GetRole", "s3:GetObject"], "Resource": "*"}]})


def error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return aws_error(exc)[:2]  # code and message


@pytest.fixture(scope="module")
def world(server: Any) -> dict[str, Any]:
    cluster = server.cluster("wi-sp", ACCOUNT)
    host = cluster["oidc_url"].removeprefix("https://")
    iam = server.client("iam", ACCOUNT)
    iam.create_role(RoleName="wi-all", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{host}"},
             "Action": "sts:AssumeRoleWithWebIdentity"},
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]}))
    iam.put_role_policy(RoleName="wi-all", PolicyName="all", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["iam:*", "s3:*"], "Resource": "*"}]}))
    get_only = iam.create_policy(PolicyName="get-only", PolicyDocument=GET_ONLY)["Policy"]["Arn"]
    other = server.client("iam", OTHER).create_policy(PolicyName="get-only", PolicyDocument=GET_ONLY)["Policy"]["Arn"]
    root_s3 = s3_client(server, account=ACCOUNT)
    root_s3.create_bucket(Bucket=BUCKET)
    root_s3.put_object(Bucket=BUCKET, Key="a.txt", Body=b"hello")
    anonymous = server.client("sts", aws_access_key_id="x", aws_secret_access_key="x")
    return {"role": f"arn:aws:iam::{ACCOUNT}:role/wi-all", "get_only": get_only, "other": other,
            "sts": anonymous, "root_sts": server.client("sts", ACCOUNT),
            "token": server.token("wi-sp", "jobs", "runner")}


def web_identity(world: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return world["sts"].assume_role_with_web_identity(RoleArn=world["role"], RoleSessionName="wi",
                                                      WebIdentityToken=world["token"], **kw)


def assume_role(world: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return world["root_sts"].assume_role(RoleArn=world["role"], RoleSessionName="ar", **kw)


def clients(server: Any, out: dict[str, Any]) -> tuple[Any, Any]:
    c = out["Credentials"]
    creds = {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"],
             "aws_session_token": c["SessionToken"]}
    return server.client("iam", **creds), s3_client(server, creds=creds)


def assert_get_only(server: Any, out: dict[str, Any]) -> None:
    iam, s3 = clients(server, out)
    assert iam.get_role(RoleName="wi-all")["Role"]["RoleName"] == "wi-all"
    assert s3.get_object(Bucket=BUCKET, Key="a.txt")["Body"].read() == b"hello"
    with pytest.raises(ClientError) as exc:
        iam.list_roles()
    code, message = error(exc)
    assert code == "AccessDenied"
    assert message.startswith(f"User: {out['AssumedRoleUser']['Arn']} is not authorized to perform: "
                              f"iam:ListRoles on resource: arn:aws:iam::{ACCOUNT}:role/ because no session "
                              "policy allows the iam:ListRoles action")
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=BUCKET, Key="b.txt", Body=b"x")
    assert error(exc)[0] == "AccessDenied"


def test_without_session_policy_the_role_policies_decide(server: Any, world: dict[str, Any]) -> None:
    out = web_identity(world)
    assert "PackedPolicySize" not in out
    iam, s3 = clients(server, out)
    assert iam.list_roles()["Roles"]
    s3.put_object(Bucket=BUCKET, Key="c.txt", Body=b"x")


@pytest.mark.parametrize("how", ["Policy", "PolicyArns", "both"])
def test_web_identity_session_policies_narrow_the_session(server: Any, world: dict[str, Any], how: str) -> None:
    kw: dict[str, Any] = {}
    if how in ("Policy", "both"):
        kw["Policy"] = GET_ONLY
    if how in ("PolicyArns", "both"):
        kw["PolicyArns"] = [{"arn": world["get_only"]}]
    out = web_identity(world, **kw)
    # present whenever a session policy is passed (AWS omits it otherwise); its value is check_packed's
    from rolebridge.sts import session_policy

    assert out.get("PackedPolicySize") == session_policy.check_packed(session_policy.requested(kw), [])
    assert_get_only(server, out)


def test_assume_role_session_policies_narrow_the_session_alike(server: Any, world: dict[str, Any]) -> None:
    assert_get_only(server, assume_role(world, PolicyArns=[{"arn": world["get_only"]}]))
    assert_get_only(server, assume_role(world, Policy=GET_ONLY))


@pytest.mark.parametrize("call", [web_identity, assume_role], ids=["AssumeRoleWithWebIdentity", "AssumeRole"])
def test_policy_arns_are_checked_alike(world: dict[str, Any], call: Any) -> None:
    missing = f"arn:aws:iam::{ACCOUNT}:policy/nope"
    for arn in (missing, world["other"], f"arn:aws:iam::{ACCOUNT}:role/wi-all", "arn:aws:iam::aws:policy/Nope"):
        with pytest.raises(ClientError) as exc:
            call(world, PolicyArns=[{"arn": arn}])
        assert error(exc) == ("MalformedPolicyDocument", f"Policy {arn} does not exist or is not attachable.")
    with pytest.raises(ClientError) as exc:
        call(world, PolicyArns=[{"arn": world["get_only"]}] * 11)
    assert error(exc) == ("ValidationError", "1 validation error detected: Value at 'policyArns' failed to "
                                              "satisfy constraint: Member must have length less than or equal to 10")
    out = call(world, PolicyArns=[{"arn": world["get_only"]}] * 9 + [{"arn": "arn:aws:iam::aws:policy/IAMReadOnlyAccess"}])
    assert out["AssumedRoleUser"]["Arn"].startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/wi-all/")


def test_policy_arns_are_resolved_only_for_an_authenticated_caller(world: dict[str, Any]) -> None:
    """Nobody learns which policies an account holds without a token the role trusts."""
    forged = world["token"][:-8] + ("A" * 8 if not world["token"].endswith("A" * 8) else "B" * 8)
    with pytest.raises(ClientError) as exc:
        world["sts"].assume_role_with_web_identity(RoleArn=world["role"], RoleSessionName="wi", WebIdentityToken=forged,
                                                   PolicyArns=[{"arn": f"arn:aws:iam::{ACCOUNT}:policy/nope"}])
    assert error(exc)[0] == "InvalidIdentityToken"
