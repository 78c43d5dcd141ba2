"""The cross-account matrix: principal account x bucket owner x identity policy x bucket policy.

Every cell is a real GetObject by an assumed-role session (web identity), driven with boto3, and
must give AWS's decision (aws-semantics 4.6):
- same account: an explicit deny anywhere denies; otherwise an allow in the identity policy OR
  the bucket policy suffices;
- cross account: an explicit deny anywhere denies; otherwise the identity policy AND the bucket
  policy must both allow.
"""

from __future__ import annotations

import itertools
import json

import pytest
from botocore.exceptions import ClientError
from s3_helpers import error_code, role_session, s3_client

ACCOUNTS = ("951000000001", "951000000002")
IDENTITY = ("allow", "deny", "none")
BUCKET_POLICY = ("allow", "deny", "absent")


def expected(same_account: bool, identity: str, bucket: str) -> bool:
    if identity == "deny" or bucket == "deny":
        return False
    if same_account:
        return identity == "allow" or bucket == "allow"
    return identity == "allow" and bucket == "allow"


def identity_doc(kind: str, bucket: str) -> str:
    effect = {"allow": "Allow", "deny": "Deny"}[kind]
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": effect, "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]})


def bucket_doc(kind: str, bucket: str, role_arn: str) -> str:
    effect = {"allow": "Allow", "deny": "Deny"}[kind]
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": effect, "Principal": {"AWS": role_arn}, "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{bucket}/*"}]})


@pytest.fixture(scope="module")
def world(server):  # type: ignore[no-untyped-def]
    cluster = server.cluster("s3-matrix", ACCOUNTS[0])
    roles = {}
    for acct in ACCOUNTS:
        roles[acct] = role_session(server, cluster=cluster, account=acct, role_name="s3-matrix-reader",
                                   namespace="s3m", service_account=f"reader-{acct}")
    buckets = {}
    for acct in ACCOUNTS:
        name = f"s3-matrix-{acct}"
        admin = s3_client(server, account=acct)
        admin.create_bucket(Bucket=name)
        admin.put_object(Bucket=name, Key="data/object.txt", Body=b"matrix data")
        buckets[acct] = name
    return roles, buckets


CELLS = list(itertools.product(ACCOUNTS, ACCOUNTS, IDENTITY, BUCKET_POLICY))


def test_cross_account_matrix(server, world):  # type: ignore[no-untyped-def]
    roles, buckets = world
    results = []
    for principal_acct, owner_acct, identity, policy in CELLS:
        role_arn, creds = roles[principal_acct]
        bucket = buckets[owner_acct]
        iam = server.client("iam", principal_acct)
        role_name = role_arn.rsplit("/", 1)[1]
        if identity == "none":
            try:
                iam.delete_role_policy(RoleName=role_name, PolicyName="s3")
            except ClientError:
                pass
        else:
            iam.put_role_policy(RoleName=role_name, PolicyName="s3", PolicyDocument=identity_doc(identity, bucket))
        admin = s3_client(server, account=owner_acct)
        if policy == "absent":
            admin.delete_bucket_policy(Bucket=bucket)
        else:
            admin.put_bucket_policy(Bucket=bucket, Policy=bucket_doc(policy, bucket, role_arn))
        s3 = s3_client(server, creds=creds)
        try:
            body = s3.get_object(Bucket=bucket, Key="data/object.txt")["Body"].read()
            got, message = body == b"matrix data", ""
        except ClientError as exc:
            assert error_code(exc) == "AccessDenied", exc.response
            got, message = False, exc.response["Error"]["Message"]
        want = expected(principal_acct == owner_acct, identity, policy)
        results.append((principal_acct, owner_acct, identity, policy, want, got, message))
    wrong = [r for r in results if r[4] != r[5]]
    assert not wrong, "\n".join(map(str, wrong))
    # same account: identity allow (bucket allow|absent) or bucket allow alone: 3 cells x 2; cross: allow+allow x 2
    assert sum(1 for r in results if r[5]) == 8
    # AWS's current message form, naming the session, action, resource and the reason
    by_cell = {r[:4]: r[6] for r in results}
    a, b = ACCOUNTS
    assert by_cell[(a, b, "allow", "absent")].endswith(
        f'is not authorized to perform: s3:GetObject on resource: "arn:aws:s3:::s3-matrix-{b}/data/object.txt" '
        "because no resource-based policy allows the s3:GetObject action")
    assert by_cell[(a, a, "deny", "absent")].endswith("with an explicit deny in an identity-based policy")
    assert by_cell[(a, a, "allow", "deny")].endswith("with an explicit deny in a resource-based policy")
    assert by_cell[(a, a, "none", "absent")].startswith(
        f"User: arn:aws:sts::{a}:assumed-role/s3-matrix-reader/reader-{a} is not authorized")
    assert by_cell[(a, a, "none", "absent")].endswith("because no identity-based policy allows the s3:GetObject action")


def test_root_of_other_account_needs_bucket_policy(server, world):  # type: ignore[no-untyped-def]
    _roles, buckets = world
    a, b = ACCOUNTS
    admin_b = s3_client(server, account=b)
    admin_b.delete_bucket_policy(Bucket=buckets[b])
    other_root = s3_client(server, account=a)
    with pytest.raises(ClientError) as exc:
        other_root.get_object(Bucket=buckets[b], Key="data/object.txt")
    assert error_code(exc.value) == "AccessDenied"
    admin_b.put_bucket_policy(Bucket=buckets[b], Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{a}:root"}, "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{buckets[b]}/*"}]}))
    assert other_root.get_object(Bucket=buckets[b], Key="data/object.txt")["Body"].read() == b"matrix data"
    # the owner's root obeys an explicit deny in its own bucket policy, but can still manage the policy
    admin_b.put_bucket_policy(Bucket=buckets[b], Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{buckets[b]}/*"}]}))
    with pytest.raises(ClientError) as exc:
        admin_b.get_object(Bucket=buckets[b], Key="data/object.txt")
    assert error_code(exc.value) == "AccessDenied"
    admin_b.delete_bucket_policy(Bucket=buckets[b])
    assert admin_b.get_object(Bucket=buckets[b], Key="data/object.txt")["Body"].read() == b"matrix data"
