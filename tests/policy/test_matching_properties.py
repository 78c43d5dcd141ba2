"""Hypothesis checks of the compiled matchers against plain reference implementations:
IAM globs (only * and ?), ARN matching component by component, and the service-prefix index
(indexed evaluation == scanning every statement)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rolebridge.policy import Principal, Request, compile_policy, evaluate
from rolebridge.policy.evaluation import statement_applies
from rolebridge.policy.patterns import glob, glob_matcher, parse_template

ALPHABET = "ab*?:/[].$"
patterns = st.text(alphabet=ALPHABET, max_size=10)
values = st.text(alphabet="ab:/[].$*?", max_size=10)


def ref_glob(pattern: str, value: str) -> bool:
    """Reference: dynamic programming over the pattern, * any run, ? one char, all else literal."""
    n, m = len(pattern), len(value)
    dp = [[False] * (m + 1) for _ in range(n + 1)]
    dp[0][0] = True
    for i in range(1, n + 1):
        c = pattern[i - 1]
        for j in range(m + 1):
            if c == "*":
                dp[i][j] = dp[i - 1][j] or (j > 0 and dp[i][j - 1])
            elif j > 0:
                dp[i][j] = dp[i - 1][j - 1] and (c == "?" or c == value[j - 1])
    return dp[n][m]


def ref_arn(pattern: str, value: str) -> bool:
    p, v = pattern.split(":", 5), value.split(":", 5)
    if len(p) < 6:
        return ref_glob(pattern, value) if value.count(":") >= 5 else False
    if len(v) < 6:
        return False
    return all(ref_glob(a, b) for a, b in zip(p, v, strict=True))


@settings(max_examples=700)
@given(patterns, values)
def test_glob_matches_reference(pattern: str, value: str) -> None:
    assert glob(pattern, value) == ref_glob(pattern, value)


arn_parts = st.lists(st.text(alphabet="ab*?/", max_size=4), min_size=6, max_size=6)
arn_values = st.lists(st.text(alphabet="ab/:", max_size=4), min_size=6, max_size=6)


@settings(max_examples=700)
@given(arn_parts, arn_values)
def test_arn_matching_is_component_wise(pattern_parts: list[str], value_parts: list[str]) -> None:
    pattern = ":".join(pattern_parts)
    value = ":".join(value_parts)
    m = glob_matcher(parse_template(pattern), arn=True)
    assert m(value, {}) == ref_arn(pattern, value), (pattern, value)


@settings(max_examples=500)
@given(
    st.text(alphabet="ab*?", max_size=6), st.text(alphabet="ab*?:", max_size=6), st.text(alphabet="ab*?", max_size=6)
)
def test_variable_values_are_literal(prefix: str, var_value: str, probe: str) -> None:
    m = glob_matcher(parse_template(prefix + "${aws:username}"))
    ctx = {"aws:username": (var_value,)}
    value = probe
    expected = any(ref_glob(prefix, value[:i]) and value[i:] == var_value for i in range(len(value) + 1))
    assert m(value, ctx) == expected


SERVICES = ["s3", "ec2", "iam", "sts"]
action_patterns = st.sampled_from(
    ["s3:GetObject", "s3:*", "ec2:Describe*", "iam:Get*", "*", "sts:AssumeRole", "s3:Get?bject", "S3:getobject"]
)
statements = st.fixed_dictionaries(
    {
        "Effect": st.sampled_from(["Allow", "Deny"]),
        "Resource": st.just("*"),
    },
    optional={"Action": st.lists(action_patterns, min_size=1, max_size=3)},
).map(lambda s: s if "Action" in s else {**s, "NotAction": ["iam:*", "s3:Put*"]})


@settings(max_examples=400)
@given(
    st.lists(st.lists(statements, min_size=1, max_size=6), min_size=1, max_size=4),
    st.sampled_from(["s3:GetObject", "s3:PutObject", "ec2:DescribeVpcs", "iam:GetUser", "sts:AssumeRole", "x:Y"]),
)
def test_index_agrees_with_full_scan(policies: list[list[dict[str, Any]]], action: str) -> None:
    compiled = [compile_policy({"Version": "2012-10-17", "Statement": p}) for p in policies]
    req = Request(Principal.aws("arn:aws:iam::111111111111:user/a"), action, "arn:aws:s3:::b/k")
    ctx = req.normalized_context()
    hits = [
        st.deny
        for pol in compiled
        for st in pol.statements
        if statement_applies(st, req.principal, req.action_lower(), req.resource, ctx) is not None
    ]
    expected = "ExplicitDeny" if any(hits) else "Allow" if hits else "ImplicitDeny"
    assert evaluate(req, identity=compiled).decision.value == expected
