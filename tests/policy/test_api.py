"""The Python API others code against: names, caching, context handling, explanation data."""

from __future__ import annotations

import json

import pytest

import rolebridge.policy as policy
from rolebridge.errors import MalformedPolicyDocument
from rolebridge.policy import (
    Decision,
    PolicyKind,
    Principal,
    Request,
    compile_policy,
    evaluate,
    evaluate_trust,
    validate_policy,
)

PROV = "arn:aws:iam::111111111111:oidc-provider/oidc.example.test/id/ABC"
H = "oidc.example.test/id/ABC"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Web",
            "Effect": "Allow",
            "Principal": {"Federated": PROV},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {f"{H}:aud": "sts.amazonaws.com"},
                "StringLike": {f"{H}:sub": "system:serviceaccount:team-a:*"},
            },
        }
    ],
}


def web(sub: str, **extra: object) -> Request:
    ctx = {f"{H}:aud": "sts.amazonaws.com", f"{H}:sub": sub, **extra}
    return Request(Principal.federated(PROV), "sts:AssumeRoleWithWebIdentity", "arn:aws:iam::111111111111:role/r", ctx)


def test_public_names() -> None:
    for name in (
        "PolicyKind", "compile_policy", "validate_policy", "Principal", "Request", "evaluate",
        "evaluate_trust", "EvaluationResult", "Decision",
    ):  # fmt: skip
        assert name in policy.__all__
        assert hasattr(policy, name)
    assert [d.value for d in Decision] == ["Allow", "ExplicitDeny", "ImplicitDeny"]
    assert {k.value for k in PolicyKind} == {"identity", "resource", "trust", "boundary", "session", "scp"}


def test_compile_is_cached_by_content_and_kind() -> None:
    text = json.dumps(TRUST)
    a = compile_policy(text, kind="trust")
    assert compile_policy(text, kind=PolicyKind.TRUST) is a
    assert compile_policy(TRUST, kind="trust") is compile_policy(dict(TRUST), kind="trust")
    assert compile_policy(text, kind="trust", name="other") is not a


def test_compile_raises_aws_error_with_explanation() -> None:
    with pytest.raises(MalformedPolicyDocument) as info:
        compile_policy({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*"}]})
    assert info.value.code == "MalformedPolicyDocument"
    assert info.value.status == 400
    assert info.value.message == "Policy statement must contain resources."
    assert info.value.explanation["statement"] == 0


def test_validate_returns_all_problems_first_is_aws() -> None:
    doc = {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "a b", "Effect": "Allow", "Action": "x", "Resource": "y"}],
    }
    problems = validate_policy(doc, kind="identity")
    assert [p.message for p in problems][:1] == [
        "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*"
    ]
    messages = {p.message for p in problems}
    assert 'Resource y must be in ARN format or "*".' in messages
    assert "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc." in messages


def test_trust_allow_and_reason() -> None:
    trust = compile_policy(TRUST, kind="trust", name="app-role trust")
    res = evaluate_trust(trust, web("system:serviceaccount:team-a:app-sa"))
    assert res.allowed
    assert res.decision is Decision.ALLOW
    assert res.reasons[0].statement == "Web"
    assert res.reasons[0].policy == "app-role trust"
    assert res.to_dict()["decision"] == "Allow"


def test_trust_denial_explains_namespace_difference() -> None:
    trust = compile_policy(TRUST, kind="trust")
    res = evaluate_trust(trust, web("system:serviceaccount:team-b:app-sa"))
    assert res.decision is Decision.IMPLICIT_DENY
    miss = res.nearest_miss
    assert miss is not None
    assert (miss.element, miss.operator, miss.key) == ("Condition", "StringLike", f"{H}:sub")
    assert miss.expected == ("system:serviceaccount:team-a:*",)
    assert miss.seen == ("system:serviceaccount:team-b:app-sa",)
    f = miss.failures[0]
    assert (f["key_prefix"], f["claim"], f["key_absent"], f["result"]) == (H, "sub", False, False)


def test_explanation_flags_wildcards_under_string_equals() -> None:
    doc = json.loads(json.dumps(TRUST))
    doc["Statement"][0]["Condition"] = {"StringEquals": {f"{H}:sub": "system:serviceaccount:team-a:*"}}
    res = evaluate_trust(compile_policy(doc, kind="trust"), web("system:serviceaccount:team-a:app"))
    assert res.nearest_miss is not None
    assert res.nearest_miss.failures[0]["wildcards_in_values"] is True


def test_explanation_for_https_prefixed_key_says_absent() -> None:
    doc = json.loads(json.dumps(TRUST))
    doc["Statement"][0]["Condition"] = {"StringEquals": {f"https://{H}:aud": "sts.amazonaws.com"}}
    res = evaluate_trust(compile_policy(doc, kind="trust"), web("x"))
    miss = res.nearest_miss
    assert miss is not None and miss.key_absent and miss.seen is None
    assert miss.failures[0]["key_prefix"] == f"https://{H}"
    assert "absent" in miss.message


def test_context_keys_case_insensitive_and_values_typed() -> None:
    doc = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "*",
                "Condition": {
                    "Bool": {"aws:SecureTransport": "true"},
                    "NumericLessThan": {"s3:max-keys": 10},
                },
            }
        ],
    }
    p = compile_policy(doc)
    req = Request(Principal.aws("arn:aws:iam::111111111111:user/a"), "S3:getobject", "arn:aws:s3:::b/k",
                  {"AWS:SecureTransport": True, "S3:Max-Keys": 3})  # fmt: skip
    assert evaluate(req, identity=[p]).allowed


def test_principal_helpers() -> None:
    p = Principal.aws("arn:aws:sts::111111111111:assumed-role/app/sess")
    assert p.role_arn == "arn:aws:iam::111111111111:role/app"
    assert p.account == "111111111111"
    assert Principal.federated(PROV).kind == "Federated"
    assert Principal.anonymous().kind == "Anonymous"


def test_candidates_index_skips_other_services() -> None:
    stmts = [{"Effect": "Allow", "Action": f"svc{i}:Do", "Resource": "*"} for i in range(60)]
    stmts.append({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
    stmts.append({"Effect": "Deny", "NotAction": "s3:*", "Resource": "*"})
    p = compile_policy({"Version": "2012-10-17", "Statement": stmts})
    cands = p.candidates("s3:getobject")
    assert [s.index for s in cands] == [60, 61]
    assert [s.index for s in p.candidates("ec2:runinstances")] == [61]
    req = Request(None, "s3:GetObject", "arn:aws:s3:::b/k")
    req.principal = Principal.aws("arn:aws:iam::111111111111:user/a")
    assert evaluate(req, identity=[p]).allowed


def test_nearest_miss_is_lazy_and_stable() -> None:
    trust = compile_policy(TRUST, kind="trust")
    res = evaluate_trust(trust, web("nope"))
    assert res.nearest_miss is res.nearest_miss
    assert res.to_dict()["nearest_miss"]["statement"] == "Web"


def test_mapping_that_is_not_json_is_malformed() -> None:
    doc: dict[object, object] = {"Version": "2012-10-17", ("x",): 1}
    with pytest.raises(MalformedPolicyDocument) as info:
        compile_policy(doc)  # type: ignore[arg-type]  # the point of the test
    assert info.value.message == "Syntax errors in policy."
    assert [p.message for p in validate_policy(doc)] == ["Syntax errors in policy."]  # type: ignore[arg-type]
