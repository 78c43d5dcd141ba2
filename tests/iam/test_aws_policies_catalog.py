"""The AWS managed policy catalog and the pagination markers: pure checks, no server."""

from __future__ import annotations

import pytest

from rolebridge import errors
from rolebridge.iam import paging
from rolebridge.iam.aws_policies import AWS_MANAGED, catalog
from rolebridge.iam.policy_store import parse_policy_arn
from rolebridge.policy import Principal, Request, compile_policy, evaluate


def test_every_catalog_policy_is_valid_and_addressable() -> None:
    assert len(AWS_MANAGED) == len(catalog())
    for policy in catalog():
        compile_policy(policy.document_text, kind="identity")
        compile_policy(policy.document_text, kind="boundary")
        ref = parse_policy_arn(policy.arn)
        assert ref is not None and ref.account == "aws" and ref.name == policy.name and ref.path == policy.path
        assert policy.policy_id.startswith("ANPA") and len(policy.policy_id) == 21
    ids = [p.policy_id for p in catalog()]
    assert len(set(ids)) == len(ids)
    assert {"AdministratorAccess", "ReadOnlyAccess", "AmazonS3ReadOnlyAccess", "IAMReadOnlyAccess"} <= {
        p.name for p in catalog()}


@pytest.mark.parametrize(("name", "action", "allowed"), [
    ("AdministratorAccess", "iam:DeleteRole", True),
    ("ReadOnlyAccess", "iam:GetRole", True),
    ("ReadOnlyAccess", "iam:DeleteRole", False),
    ("AmazonS3ReadOnlyAccess", "s3:GetObject", True),
    ("AmazonS3ReadOnlyAccess", "s3:PutObject", False),
    ("PowerUserAccess", "s3:PutObject", True),
    ("PowerUserAccess", "iam:CreateRole", False),
    ("PowerUserAccess", "iam:ListRoles", True),
])
def test_catalog_policies_grant_what_their_names_say(name: str, action: str, allowed: bool) -> None:
    policy = next(p for p in catalog() if p.name == name)
    result = evaluate(Request(principal=Principal(arn="arn:aws:sts::123456789012:assumed-role/r/s"), action=action,
                              resource="*"), identity=[compile_policy(policy.document_text)])
    assert result.allowed is allowed


def test_markers_round_trip_and_foreign_markers_are_refused() -> None:
    assert paging.decode_marker(paging.encode_marker("role-b")) == "role-b"
    assert paging.decode_marker(None) is None
    for bad in ("10", "bm90LW91cnM=", "%%%"):
        with pytest.raises(errors.ValidationError):
            paging.decode_marker(bad)
    items = [f"k{i}" for i in range(5)]
    first = paging.page(items, str, {"MaxItems": 2}, "Items")
    assert first["Items"] == ["k0", "k1"] and first["IsTruncated"] is True
    last = paging.page(items, str, {"MaxItems": 3, "Marker": first["Marker"]}, "Items")
    assert last == {"Items": ["k2", "k3", "k4"], "IsTruncated": False}
