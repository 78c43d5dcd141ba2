"""Property tests (hypothesis): parsing never crashes on arbitrary JSON, only reports
MalformedPolicyDocument (or LimitExceeded for size); evaluation is deterministic and does not
depend on the order of statements or of policies."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rolebridge.errors import LimitExceeded, MalformedPolicyDocument
from rolebridge.policy import PolicyKind, Principal, Request, compile_policy, evaluate, validate_policy

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=25,
)

# Pools that reach deep into validation and compilation: mostly valid pieces, some broken ones.
ACTIONS = [
    "s3:GetObject",
    "s3:Get*",
    "s3:*",
    "*",
    "ec2:Describe*",
    "iam:*AccessKey*",
    "GetObject",
    "s3:a:b",
    5,
]
RESOURCES = [
    "*",
    "arn:aws:s3:::bucket/*",
    "arn:aws:s3:::bucket/${aws:username}/*",
    "bucket",
    "arn:aws:iam::1:x",
    [],
]
OPERATORS = [
    "StringEquals", "StringNotEquals", "StringLike", "StringNotLike", "StringEqualsIgnoreCase",
    "NumericLessThan", "DateGreaterThan", "Bool", "IpAddress", "NotIpAddress", "ArnLike", "Null",
    "ForAllValues:StringEquals", "ForAnyValue:StringLike", "StringEqualsIfExists", "Bogus",
]  # fmt: skip
KEYS = [
    "aws:username",
    "aws:SourceIp",
    "aws:CurrentTime",
    "aws:TagKeys",
    "aws:SecureTransport",
    "s3:max-keys",
]
VALUES = [
    "alice",
    "a*",
    "10",
    "2020-01-01T00:00:00Z",
    "true",
    "10.0.0.0/8",
    "arn:aws:s3:::b/*",
    "${aws:username}",
]
PRINCIPALS = [
    "*",
    {"AWS": "111111111111"},
    {"AWS": "arn:aws:iam::111111111111:user/alice"},
    {"Federated": "x y"},
    {},
]

statement_parts = st.fixed_dictionaries(
    {"Effect": st.sampled_from(["Allow", "Deny", "allow", "Maybe"])},
    optional={
        "Sid": st.sampled_from(["A", "B", "with space", ""]),
        "Action": st.sampled_from(ACTIONS) | st.lists(st.sampled_from(ACTIONS), max_size=3),
        "NotAction": st.sampled_from(ACTIONS),
        "Resource": st.sampled_from(RESOURCES),
        "NotResource": st.sampled_from(RESOURCES),
        "Principal": st.sampled_from(PRINCIPALS),
        "Condition": st.dictionaries(
            st.sampled_from(OPERATORS),
            st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES) | st.lists(st.sampled_from(VALUES))),
            max_size=3,
        ),
        "Extra": st.just(1),
    },
)
policy_like = st.fixed_dictionaries(
    {"Statement": st.lists(statement_parts, max_size=4) | statement_parts},
    optional={"Version": st.sampled_from(["2012-10-17", "2008-10-17", "2020-01-01"]), "Id": json_scalars},
)


def _check_parse(doc: Any, kind: PolicyKind) -> None:
    problems = validate_policy(doc, kind=kind)
    for p in problems:
        assert p.code in ("MalformedPolicyDocument", "LimitExceeded")
        assert p.message
    try:
        compiled = compile_policy(doc, kind=kind)
    except (MalformedPolicyDocument, LimitExceeded) as exc:
        assert problems, "compile rejected what validate accepted"
        assert exc.message == problems[0].message
    else:
        assert not problems
        assert compiled.statements


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(json_values, st.sampled_from(list(PolicyKind)))
def test_parse_never_crashes_on_arbitrary_json(value: Any, kind: PolicyKind) -> None:
    _check_parse(json.dumps(value), kind)


@settings(max_examples=300)
@given(st.text(max_size=60))
def test_parse_never_crashes_on_arbitrary_text(text: str) -> None:
    _check_parse(text, PolicyKind.IDENTITY)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(policy_like, st.sampled_from(list(PolicyKind)))
def test_parse_never_crashes_on_policy_like_documents(doc: dict[str, Any], kind: PolicyKind) -> None:
    _check_parse(json.dumps(doc), kind)
    _check_parse(doc, kind)


# -- evaluation ------------------------------------------------------------------------------
V_ACTIONS = ["s3:GetObject", "s3:Get*", "s3:*", "*", "ec2:Describe*", "s3:PutObject", "s3:Get?bject"]
V_RESOURCES = ["*", "arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/${aws:username}/*", "arn:aws:s3:::other/*"]
V_CONDITIONS = [
    {"StringEquals": {"aws:username": "alice"}},
    {"StringNotEquals": {"aws:username": ["bob", "carol"]}},
    {"StringLike": {"aws:username": "a*"}},
    {"Bool": {"aws:SecureTransport": "true"}},
    {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
    {"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}},
    {"ForAnyValue:StringEquals": {"aws:TagKeys": "env"}},
    {"NumericLessThanIfExists": {"s3:max-keys": "100"}},
    {"Null": {"aws:TokenIssueTime": "true"}},
]
valid_statement = st.fixed_dictionaries(
    {
        "Effect": st.sampled_from(["Allow", "Allow", "Deny"]),
        "Action": st.lists(st.sampled_from(V_ACTIONS), min_size=1, max_size=2),
        "Resource": st.lists(st.sampled_from(V_RESOURCES), min_size=1, max_size=2),
    },
    optional={"Condition": st.sampled_from(V_CONDITIONS)},
)
requests = st.builds(
    lambda action, resource, ctx: (action, resource, ctx),
    st.sampled_from(["s3:GetObject", "s3:PutObject", "ec2:DescribeInstances", "iam:GetUser"]),
    st.sampled_from(["arn:aws:s3:::bucket/alice/x", "arn:aws:s3:::other/y", "arn:aws:s3:::bucket/bob/z"]),
    st.fixed_dictionaries(
        {},
        optional={
            "aws:username": st.sampled_from(["alice", "bob", "Alice"]),
            "aws:SecureTransport": st.booleans(),
            "aws:SourceIp": st.sampled_from(["10.1.2.3", "192.168.0.1", "bogus"]),
            "aws:TagKeys": st.lists(st.sampled_from(["env", "team", "owner"]), max_size=3),
            "s3:max-keys": st.sampled_from(["5", "500", "x"]),
            "aws:TokenIssueTime": st.just("2026-01-01T00:00:00Z"),
        },
    ),
)


def _policy(stmts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [dict(s, Sid=f"S{i}") for i, s in enumerate(stmts)]}


def _reordered(stmts: list[dict[str, Any]], order: list[int]) -> dict[str, Any]:
    named = _policy(stmts)["Statement"]
    return {"Version": "2012-10-17", "Statement": [named[i] for i in order]}


def _outcome(result: Any) -> tuple[str, frozenset[tuple[str, str | None]]]:
    return result.decision.value, frozenset((r.policy, r.statement) for r in result.reasons)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.lists(valid_statement, min_size=1, max_size=5), min_size=1, max_size=3),
    requests,
    st.randoms(use_true_random=False),
)
def test_evaluation_is_deterministic_and_order_independent(
    policies: list[list[dict[str, Any]]], request: tuple[str, str, dict[str, Any]], rnd: Any
) -> None:
    action, resource, ctx = request
    principal = Principal.aws("arn:aws:iam::111111111111:user/alice")
    compiled = [compile_policy(_policy(p), name=f"p{i}") for i, p in enumerate(policies)]
    first = evaluate(Request(principal, action, resource, ctx), identity=compiled)
    again = evaluate(Request(principal, action, resource, dict(ctx)), identity=compiled)
    assert first.to_dict() == again.to_dict()

    shuffled = []
    for i, p in enumerate(policies):
        order = list(range(len(p)))
        rnd.shuffle(order)
        shuffled.append(compile_policy(_reordered(p, order), name=f"p{i}"))
    rnd.shuffle(shuffled)
    other = evaluate(Request(principal, action, resource, ctx), identity=shuffled)
    assert _outcome(first) == _outcome(other)
    if first.decision.value == "ImplicitDeny" and first.nearest_miss is not None:
        assert other.nearest_miss is not None
        assert first.nearest_miss.score == other.nearest_miss.score
