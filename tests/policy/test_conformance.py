"""The table-driven conformance suite: every case in tests/policy/cases/*.json, each tied to a rule
of AWS's IAM documentation (its ``rule`` string), runs as its own test.

Three shapes:
* ``conditions``: one condition (operator, key, policy values) against a request context; the
  case says whether it matches. Wrapped in an Allow statement: match -> Allow, else ImplicitDeny
  with the nearest miss pointing at that condition.
* ``evaluation``: whole policy sets (identity, resource, boundary, session, guardrails, or a role
  trust policy) and a request; the expected decision and, optionally, fields of the nearest miss.
* ``validation``: a document and kind; valid, or the AWS error code and message IAM reports first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rolebridge.errors import AWSError
from rolebridge.policy import (
    Decision,
    PolicyKind,
    compile_policy,
    evaluate,
    evaluate_trust,
    validate_policy,
)

from ._helpers import request_from

CASES_DIR = Path(__file__).parent / "cases"


def _load(suite: str) -> list[Any]:
    params = []
    for path in sorted(CASES_DIR.glob("*.json")):
        data = json.loads(path.read_text())
        if data["suite"] != suite:
            continue
        for i, case in enumerate(data["cases"]):
            cid = case.get("id") or f"{path.stem}-{i:03d}"
            params.append(pytest.param(case, id=cid))
    return params


CONDITION_CASES = _load("conditions")
EVALUATION_CASES = _load("evaluation")
VALIDATION_CASES = _load("validation")


def test_suite_is_large_enough() -> None:
    total = len(CONDITION_CASES) + len(EVALUATION_CASES) + len(VALIDATION_CASES)
    assert total >= 300, total


@pytest.mark.parametrize("case", CONDITION_CASES)
def test_condition(case: dict[str, Any]) -> None:
    assert case["rule"]
    version = case.get("version", "2012-10-17")
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": "*",
        "Condition": {case["op"]: {case["key"]: case["values"]}},
    }
    doc: dict[str, Any] = {"Statement": [statement]}
    if version is not None:
        doc["Version"] = version
    req = request_from({"context": case.get("context", {})})
    if version == "2012-10-17":
        result = evaluate(req, identity=[compile_policy(doc)])
    else:  # older versions are accepted for resource policies only
        statement["Principal"] = "*"
        result = evaluate(req, resource_policy=compile_policy(doc, kind="resource"))
    expected = Decision.ALLOW if case["match"] else Decision.IMPLICIT_DENY
    assert result.decision is expected, result.to_dict()
    if not case["match"]:
        miss = result.nearest_miss
        assert miss is not None
        assert miss.element == "Condition"
        assert miss.operator == case["op"]
        assert miss.key == case["key"]


def _policies(raw: Any, kind: str) -> list[Any]:
    return [compile_policy(d, kind=kind, name=f"{kind}{i}") for i, d in enumerate(raw or [])]


@pytest.mark.parametrize("case", EVALUATION_CASES)
def test_evaluation(case: dict[str, Any]) -> None:
    assert case["rule"]
    req = request_from(case.get("request", {}))
    if "trust" in case:
        result = evaluate_trust(compile_policy(case["trust"], kind="trust", name="trust"), req)
    else:
        identity = list(case.get("policies", []))
        if "statement" in case:
            identity.append({"Version": "2012-10-17", "Statement": [case["statement"]]})
        rp = case.get("resource_policy")
        bd = case.get("boundary")
        result = evaluate(
            req,
            identity=_policies(identity, "identity"),
            resource_policy=None if rp is None else compile_policy(rp, kind="resource", name="resource"),
            boundary=None if bd is None else compile_policy(bd, kind="boundary", name="boundary"),
            session=_policies(case.get("session"), "session"),
            guardrails=_policies(case.get("guardrails"), "scp"),
            resource_account=case.get("resource_account"),
        )
    assert result.decision.value == case["expect"], result.to_dict()
    assert result.allowed is (case["expect"] == "Allow")
    assert result.reasons, "every decision names what decided it"
    if case["expect"] == "ExplicitDeny":
        assert any(r.effect == "Deny" for r in result.reasons)
    if "miss" in case:
        miss = result.nearest_miss
        assert miss is not None
        got = miss.to_dict()
        for k, v in case["miss"].items():
            assert got[k] == v, (k, got)
    if "hint_codes" in case:
        miss = result.nearest_miss
        assert miss is not None
        assert [h["code"] for h in miss.failures[0]["hints"]] == case["hint_codes"], miss.failures[0]
    if "reason_kind" in case:
        assert result.reasons[0].kind == case["reason_kind"], result.to_dict()


@pytest.mark.parametrize("case", VALIDATION_CASES)
def test_validation(case: dict[str, Any]) -> None:
    assert case["rule"]
    kind = PolicyKind(case.get("kind", "identity"))
    document = case["raw"] if "raw" in case else json.dumps(case["document"])
    problems = validate_policy(document, kind=kind)
    if case.get("valid"):
        assert problems == [], [p.to_dict() for p in problems]
        compile_policy(document, kind=kind)
        return
    assert problems, "expected a problem"
    first = problems[0]
    assert (first.code, first.message) == (case["code"], case["message"]), first.to_dict()
    for field in ("statement", "element"):
        if field in case:
            assert getattr(first, field) == case[field], first.to_dict()
    with pytest.raises(AWSError) as info:
        compile_policy(document, kind=kind)
    assert info.value.code == case["code"]
    assert info.value.message == case["message"]


def _if_exists_cases() -> list[tuple[str, dict[str, Any], bool]]:
    """Every base operator's documented cases, re-run as its ``...IfExists`` form.

    IAM UG, condition operators, "...IfExists condition operators": "If the policy key is present
    in the context of the request, process the key as specified in the policy. If the key is not
    present, evaluate the condition element as true." Derived only from cases whose key is in the
    context (what the base operator does with a missing key is a separate rule, covered above);
    Null has no IfExists form.
    """
    out = []
    for param in CONDITION_CASES:
        case = param.values[0]
        op = case["op"]
        if ":" in op or op.endswith("IfExists") or op == "Null" or case.get("version", "2012-10-17") != "2012-10-17":
            continue
        if case["key"] not in case.get("context", {}):
            continue
        present = {**case, "op": f"{op}IfExists"}
        absent = {**present, "context": {k: v for k, v in case["context"].items() if k != case["key"]}}
        out.append((f"{op}IfExists present: {case['rule']}", present, case["match"]))
        out.append((f"{op}IfExists absent: {case['rule']}", absent, True))
    return out


IF_EXISTS_CASES = _if_exists_cases()


def test_every_base_operator_has_if_exists_cases() -> None:
    ops = {case["op"] for _, case, _ in IF_EXISTS_CASES}
    base = {p.values[0]["op"] for p in CONDITION_CASES} - {"Null"}
    base = {op for op in base if ":" not in op and not op.endswith("IfExists")}
    assert ops == {f"{op}IfExists" for op in base}, sorted(base - {op.removesuffix("IfExists") for op in ops})


@pytest.mark.parametrize(("rule", "case", "match"), IF_EXISTS_CASES, ids=[r for r, _, _ in IF_EXISTS_CASES])
def test_if_exists(rule: str, case: dict[str, Any], match: bool) -> None:
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
                                                   "Condition": {case["op"]: {case["key"]: case["values"]}}}]}
    result = evaluate(request_from({"context": case["context"]}), identity=[compile_policy(doc)])
    assert result.decision is (Decision.ALLOW if match else Decision.IMPLICIT_DENY), (rule, result.to_dict())
