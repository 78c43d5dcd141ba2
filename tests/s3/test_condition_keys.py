"""S3's condition keys in bucket policies, each driven with boto3 against the live server.

Every test grants (or denies) through a bucket policy whose only difference between the allowed
and the refused call is the condition key under test, so each would fail if the key were missing,
had another value, or were ignored. The sessions used:
- ``reader``: a web-identity session of role ``cond-reader`` in the bucket owner's account, with no
  identity policy, so in its own account only the bucket policy can let it in;
- ``plain``: an AssumeRole session (no web identity) of role ``team/cond-plain`` (path ``/team/``),
  also without identity policy;
- account roots of the owner and of two other accounts.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from s3_helpers import error_code, role_session, s3_client

OWNER = "962000000001"
OTHER = "962000000002"
THIRD = "962000000003"
KEY = "data/object.txt"
BODY = b"condition keys"


@dataclass
class World:
    server: Any
    reader_arn: str
    reader_creds: dict[str, str]
    reader: Any  # boto3 S3 client of the web-identity session
    provider_arn: str
    plain_arn: str
    plain: Any  # boto3 S3 client of the AssumeRole session
    owner: Any  # boto3 S3 client of the owner's root


def _assume_plain(server: Any) -> tuple[str, dict[str, str]]:
    iam = server.client("iam", OWNER)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": OWNER},
                                                     "Action": "sts:AssumeRole"}]}
    arn = iam.create_role(RoleName="cond-plain", Path="/team/", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    creds = server.client("sts", OWNER).assume_role(RoleArn=arn, RoleSessionName="plain")["Credentials"]
    return arn, {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
                 "aws_session_token": creds["SessionToken"]}


@pytest.fixture(scope="module")
def world(server: Any) -> World:
    cluster = server.cluster("s3-cond", OWNER)
    reader_arn, reader_creds = role_session(server, cluster=cluster, account=OWNER, role_name="cond-reader",
                                            namespace="cond", service_account="reader")
    host = cluster["oidc_url"].removeprefix("https://")
    plain_arn, plain_creds = _assume_plain(server)
    return World(server, reader_arn, reader_creds, s3_client(server, creds=reader_creds), f"arn:aws:iam::{OWNER}:oidc-provider/{host}",
                 plain_arn, s3_client(server, creds=plain_creds), s3_client(server, account=OWNER))


def make_bucket(world: World, name: str, statements: list[dict[str, Any]]) -> str:
    world.owner.create_bucket(Bucket=name)
    world.owner.put_object(Bucket=name, Key=KEY, Body=BODY)
    set_policy(world, name, statements)
    return name


def set_policy(world: World, bucket: str, statements: list[dict[str, Any]]) -> None:
    world.owner.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": statements}))


def get_ok(client: Any, bucket: str) -> bool:
    """True when GetObject succeeds, False on AccessDenied (anything else fails the test)."""
    try:
        return bool(client.get_object(Bucket=bucket, Key=KEY)["Body"].read() == BODY)
    except ClientError as exc:
        assert error_code(exc) == "AccessDenied", exc.response
        return False


def denied(call: Callable[[], Any]) -> bool:
    try:
        call()
    except ClientError as exc:
        assert error_code(exc) == "AccessDenied", exc.response
        return True
    return False


def read_stmt(bucket: str, principal: Any, condition: dict[str, Any], effect: str = "Allow") -> dict[str, Any]:
    return {"Effect": effect, "Principal": principal, "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/*", "Condition": condition}


def test_s3_prefix_limits_listing(world: World) -> None:
    bucket = make_bucket(world, "cond-prefix", [{
        "Effect": "Allow", "Principal": {"AWS": world.reader_arn}, "Action": "s3:ListBucket",
        "Resource": "arn:aws:s3:::cond-prefix", "Condition": {"StringLike": {"s3:prefix": "data/*"}}}])
    world.owner.put_object(Bucket=bucket, Key="secret/x", Body=b"x")
    listed = world.reader.list_objects_v2(Bucket=bucket, Prefix="data/")
    assert [o["Key"] for o in listed["Contents"]] == [KEY]
    assert denied(lambda: world.reader.list_objects_v2(Bucket=bucket, Prefix="secret/"))
    assert denied(lambda: world.reader.list_objects_v2(Bucket=bucket))  # no prefix: s3:prefix is "", not data/*
    # the IAM user guide's "list the root" form: no Prefix parameter is the empty prefix
    set_policy(world, bucket, [{
        "Effect": "Allow", "Principal": {"AWS": world.reader_arn}, "Action": "s3:ListBucket",
        "Resource": "arn:aws:s3:::cond-prefix",
        "Condition": {"StringEquals": {"s3:prefix": ["", "data/"], "s3:delimiter": "/"}}}])
    root = world.reader.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert sorted(p["Prefix"] for p in root["CommonPrefixes"]) == ["data/", "secret/"]
    assert denied(lambda: world.reader.list_objects_v2(Bucket=bucket))  # no delimiter
    assert denied(lambda: world.reader.list_objects_v2(Bucket=bucket, Prefix="secret/", Delimiter="/"))


def test_x_amz_acl_required_for_cross_account_writes(world: World) -> None:
    """The classic cross-account upload rule: writes must hand the owner full control."""
    server = world.server
    cluster = server.cluster("s3-cond", OWNER)
    writer_arn, writer_creds = role_session(server, cluster=cluster, account=OTHER, role_name="cond-writer",
                                            namespace="cond", service_account="writer")
    server.client("iam", OTHER).put_role_policy(RoleName="cond-writer", PolicyName="put", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:PutObject",
                                               "Resource": "arn:aws:s3:::cond-acl/*"}]}))
    make_bucket(world, "cond-acl", [{
        "Effect": "Allow", "Principal": {"AWS": writer_arn}, "Action": "s3:PutObject",
        "Resource": "arn:aws:s3:::cond-acl/*",
        "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}}])
    writer = s3_client(server, creds=writer_creds)
    writer.put_object(Bucket="cond-acl", Key="in/a", Body=b"a", ACL="bucket-owner-full-control")
    assert world.owner.get_object(Bucket="cond-acl", Key="in/a")["Body"].read() == b"a"
    assert denied(lambda: writer.put_object(Bucket="cond-acl", Key="in/b", Body=b"b"))
    assert denied(lambda: writer.put_object(Bucket="cond-acl", Key="in/c", Body=b"c", ACL="public-read"))
    # multipart uploads are checked at Create with the same header
    writer.create_multipart_upload(Bucket="cond-acl", Key="in/d", ACL="bucket-owner-full-control")
    assert denied(lambda: writer.create_multipart_upload(Bucket="cond-acl", Key="in/e"))


def test_secure_transport_is_true_over_https(world: World) -> None:
    """The server only speaks HTTPS: the usual "Deny when SecureTransport is false" never fires,
    and the mirror image (deny when true) always does, so the key is present and true."""
    bucket = make_bucket(world, "cond-tls", [
        read_stmt("cond-tls", {"AWS": world.reader_arn}, {}),
        read_stmt("cond-tls", "*", {"Bool": {"aws:SecureTransport": "false"}}, effect="Deny")])
    assert get_ok(world.reader, bucket)
    assert get_ok(world.owner, bucket)
    set_policy(world, bucket, [
        read_stmt("cond-tls", {"AWS": world.reader_arn}, {}),
        read_stmt("cond-tls", "*", {"Bool": {"aws:SecureTransport": "true"}}, effect="Deny")])
    assert not get_ok(world.reader, bucket)
    assert not get_ok(world.owner, bucket)


def _presigned_get(world: World, bucket: str, max_tls: ssl.TLSVersion) -> int:
    signer = s3_client(world.server, account=OWNER, signature_version="s3v4")
    url = signer.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": KEY})
    context = ssl.create_default_context(cafile=world.server.ca_bundle)
    context.maximum_version = max_tls
    with httpx.Client(verify=context) as client:
        return client.get(url).status_code


def test_tls_version_is_the_negotiated_one(world: World) -> None:
    """s3:TlsVersion comes from the connection: a TLS 1.2 client and a TLS 1.3 client differ."""
    bucket = make_bucket(world, "cond-tlsver", [
        read_stmt("cond-tlsver", "*", {"NumericLessThan": {"s3:TlsVersion": "1.3"}}, effect="Deny")])
    assert _presigned_get(world, bucket, ssl.TLSVersion.TLSv1_3) == 200
    assert _presigned_get(world, bucket, ssl.TLSVersion.TLSv1_2) == 403
    set_policy(world, bucket, [
        read_stmt("cond-tlsver", "*", {"NumericEquals": {"s3:TlsVersion": "1.2"}}, effect="Deny")])
    assert _presigned_get(world, bucket, ssl.TLSVersion.TLSv1_3) == 200
    assert _presigned_get(world, bucket, ssl.TLSVersion.TLSv1_2) == 403
    assert get_ok(world.owner, bucket)  # boto3 negotiates TLS 1.3 here


def test_source_ip(world: World) -> None:
    bucket = make_bucket(world, "cond-ip", [
        read_stmt("cond-ip", {"AWS": world.reader_arn}, {"IpAddress": {"aws:SourceIp": "127.0.0.1/32"}})])
    assert get_ok(world.reader, bucket)
    set_policy(world, bucket, [
        read_stmt("cond-ip", {"AWS": world.reader_arn}, {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})])
    assert not get_ok(world.reader, bucket)
    # the usual "only from our network" guard, as a deny: loopback is outside 10.0.0.0/8
    set_policy(world, bucket, [
        read_stmt("cond-ip", {"AWS": world.reader_arn}, {}),
        read_stmt("cond-ip", "*", {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, effect="Deny")])
    assert not get_ok(world.reader, bucket)
    assert not get_ok(world.owner, bucket)


def test_source_ip_is_not_taken_from_x_forwarded_for(world: World) -> None:
    """A local client cannot pick its own aws:SourceIp with a proxy header."""
    bucket = make_bucket(world, "cond-xff", [
        read_stmt("cond-xff", {"AWS": world.reader_arn}, {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
        read_stmt("cond-xff", "*", {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}, effect="Deny")])
    client = s3_client(world.server, creds=world.reader_creds)

    def forwarded(request: Any, **_: Any) -> None:
        request.headers["X-Forwarded-For"] = "10.1.2.3"
        request.headers["X-Real-IP"] = "10.1.2.3"
        request.headers["Forwarded"] = "for=10.1.2.3"

    client.meta.events.register("before-sign.s3.GetObject", forwarded)
    assert not get_ok(client, bucket)


def test_principal_account(world: World) -> None:
    bucket = make_bucket(world, "cond-acct", [
        read_stmt("cond-acct", "*", {"StringEquals": {"aws:PrincipalAccount": OTHER}})])
    assert get_ok(s3_client(world.server, account=OTHER), bucket)
    assert not get_ok(s3_client(world.server, account=THIRD), bucket)
    assert not get_ok(world.reader, bucket)  # same account as the bucket, but not OTHER
    set_policy(world, bucket, [read_stmt("cond-acct", "*", {"StringEquals": {"aws:PrincipalAccount": OWNER}})])
    assert get_ok(world.reader, bucket)


def test_principal_arn_is_the_role_arn(world: World) -> None:
    """For a role session aws:PrincipalArn is the role's ARN (with its path), never the session's."""
    session_arn = f"arn:aws:sts::{OWNER}:assumed-role/cond-reader/reader"
    bucket = make_bucket(world, "cond-parn", [
        read_stmt("cond-parn", "*", {"ArnEquals": {"aws:PrincipalArn": world.reader_arn}})])
    assert world.reader_arn == f"arn:aws:iam::{OWNER}:role/cond-reader"
    assert get_ok(world.reader, bucket)
    assert not get_ok(world.plain, bucket)
    set_policy(world, bucket, [read_stmt("cond-parn", "*", {"StringEquals": {"aws:PrincipalArn": session_arn}})])
    assert not get_ok(world.reader, bucket)
    # a role with a path: the path is part of the ARN, so wildcards over paths work as in AWS
    assert world.plain_arn == f"arn:aws:iam::{OWNER}:role/team/cond-plain"
    set_policy(world, bucket, [read_stmt("cond-parn", "*", {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{OWNER}:role/team/*"}})])
    assert get_ok(world.plain, bucket)
    assert not get_ok(world.reader, bucket)
    # an account root's aws:PrincipalArn is the root ARN
    set_policy(world, bucket, [read_stmt("cond-parn", "*", {"ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{OTHER}:root"}})])
    assert get_ok(s3_client(world.server, account=OTHER), bucket)
    assert not get_ok(s3_client(world.server, account=THIRD), bucket)


def test_username_is_absent_for_roots_and_role_sessions(world: World) -> None:
    """AWS sets aws:username only for IAM users, which this server does not have: roots and role
    sessions carry none, so a "present" test never matches and ${aws:username} resolves to nothing."""
    bucket = make_bucket(world, "cond-user", [
        read_stmt("cond-user", {"AWS": [world.reader_arn, world.plain_arn]}, {}),
        read_stmt("cond-user", "*", {"Null": {"aws:username": "false"}}, effect="Deny")])
    assert get_ok(world.reader, bucket)
    assert get_ok(world.plain, bucket)
    assert get_ok(world.owner, bucket)
    set_policy(world, bucket, [
        read_stmt("cond-user", {"AWS": [world.reader_arn, world.plain_arn]}, {"Null": {"aws:username": "true"}})])
    assert get_ok(world.reader, bucket)
    assert get_ok(world.plain, bucket)
    world.owner.put_object(Bucket=bucket, Key="home/reader/x", Body=b"x")
    set_policy(world, bucket, [{"Effect": "Allow", "Principal": {"AWS": world.reader_arn}, "Action": "s3:GetObject",
                                "Resource": "arn:aws:s3:::cond-user/home/${aws:username}/*"}])
    assert denied(lambda: world.reader.get_object(Bucket=bucket, Key="home/reader/x"))


def test_federated_provider_for_web_identity_sessions(world: World) -> None:
    """aws:FederatedProvider is the OIDC provider's ARN on requests made with a web-identity
    session; an AssumeRole session, a session chained from a web-identity one, and a root have none."""
    server = world.server
    bucket = make_bucket(world, "cond-fed", [
        read_stmt("cond-fed", "*", {"StringEquals": {"aws:FederatedProvider": world.provider_arn}})])
    assert get_ok(world.reader, bucket)
    assert not get_ok(world.plain, bucket)
    assert not get_ok(s3_client(server, account=OTHER), bucket)
    # chaining from the web-identity session (AssumeRole with its credentials): not propagated
    iam = server.client("iam", OWNER)
    iam.put_role_policy(RoleName="cond-reader", PolicyName="chain", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                               "Resource": f"arn:aws:iam::{OWNER}:role/cond-chained"}]}))
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": world.reader_arn},
                                                     "Action": "sts:AssumeRole"}]}
    chained_arn = iam.create_role(RoleName="cond-chained", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    sts = server.client("sts", **world.reader_creds)
    out = sts.assume_role(RoleArn=chained_arn, RoleSessionName="chained")["Credentials"]
    chained = s3_client(server, creds={"aws_access_key_id": out["AccessKeyId"],
                                       "aws_secret_access_key": out["SecretAccessKey"],
                                       "aws_session_token": out["SessionToken"]})
    set_policy(world, bucket, [
        read_stmt("cond-fed", {"AWS": chained_arn}, {}),
        read_stmt("cond-fed", "*", {"Null": {"aws:FederatedProvider": "false"}}, effect="Deny")])
    assert get_ok(chained, bucket)
    assert not get_ok(world.reader, bucket)
