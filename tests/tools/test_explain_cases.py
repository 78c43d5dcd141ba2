"""Every real-world case of sts-cases.json, explained offline: AWS's error code (and message), and our cause.

The cases' issuer (oidc.example.test/id/ABC) is rewritten to a local issuer of the test's own,
with a port (as local issuers have), whose keys sign the tokens; EvaluatedAt is the time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rolebridge.tokens.keys import KeyRing
from rolebridge.tools.explain import CAUSES, OfflineProvider, explain_offline

CASES_FILE = Path("/work/shared/reference/sts-cases.json")
if not CASES_FILE.exists():  # the reference set travels with the repo's shared dir in CI
    CASES_FILE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "sts-cases.json"
CASES = json.loads(CASES_FILE.read_text()) if CASES_FILE.exists() else []
LOCAL = "127.0.0.1:9443/cases/ABC"

KIND_TO_CAUSE = {
    "sub-namespace-mismatch": "sub-namespace-mismatch",
    "sub-case-mismatch": "sub-case-mismatch",
    "underscore-vs-dot-in-serviceaccount-name": "project-name-underscore",
    "https-scheme-in-condition-key": "condition-key-has-scheme",
    "aud-not-in-provider-client-ids": "audience-not-allowed",
    "provider-not-registered": "provider-missing",
    "cross-account-provider-missing-in-role-account": "provider-in-other-account",
    "federated-principal-typo": "principal-mismatch",
    "token-expired": "token-expired",
    "role-session-name-invalid-chars": "session-name-invalid",
    "malformed-role-arn": "role-arn-invalid",
    "duration-exceeds-max-session": "duration-too-long",
    "multiple-conditions-and-not-or": "conditions-all-required",
    "missing-sub-condition": None,
    "emulator-accepts-invalid-token": "signature-invalid",
    "baseline-success": None,
}


@pytest.fixture(scope="module")
def rings(tmp_path_factory: pytest.TempPathFactory) -> tuple[KeyRing, KeyRing]:
    root = tmp_path_factory.mktemp("issuer")
    return KeyRing.create(root / "issuer"), KeyRing.create(root / "forger")


def _rewrite(case: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(case).replace("oidc.example.test/id/ABC", LOCAL))


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case_is_explained_with_awss_code_and_our_cause(
    case: dict[str, Any], rings: tuple[KeyRing, KeyRing]
) -> None:
    assert case["kind"] in KIND_TO_CAUSE, f"unmapped kind {case['kind']}"
    case = _rewrite(case)
    issuer, forger = rings
    signer = forger if case["kind"] == "emulator-accepts-invalid-token" else issuer
    token = signer.sign(case["token_claims"])
    req = case["request"]
    expl = explain_offline(
        token=token,
        role_arn=req["RoleArn"],
        session_name=req["RoleSessionName"],
        duration=req.get("DurationSeconds"),
        now=req["EvaluatedAt"],
        trust_policy=case["trust_policy"],
        providers=[OfflineProvider(p["url"], p["account"], tuple(p["client_ids"])) for p in case["provider"]],
        jwks=issuer.jwks(now=req["EvaluatedAt"]),
        max_session_duration=case["role"]["max_session_duration"],
    )
    expected = case["expected"]
    assert expl.outcome == expected["outcome"], expl.checks
    assert expl.error_code == expected["error_code"], expl.checks
    if expected["error_message"]:
        assert expl.error_message == expected["error_message"]
    if expected.get("assumed_role_arn"):
        assert expl.assumed_role_arn == expected["assumed_role_arn"]
    assert expl.cause == KIND_TO_CAUSE[case["kind"]], expl.checks
    out = expl.to_json()
    assert list(out) == ["outcome", "error_code", "cause", "checks", "fix"]
    assert out["cause"] is None or out["cause"] in CAUSES
    assert out["fix"] and out["fix"].endswith(".")
    json.dumps(out)  # serializable as printed
    if expected["outcome"] == "error":
        assert any(not c["ok"] for c in out["checks"][:-1]), "a failing check is named"
        assert out["checks"][-1]["detail"].startswith(expected["error_code"])


def test_every_case_kind_is_covered() -> None:
    assert len(CASES) >= 16
    assert {c["kind"] for c in CASES} <= set(KIND_TO_CAUSE)


def test_project_name_underscore_fix_names_the_dotted_pattern(rings: tuple[KeyRing, KeyRing]) -> None:
    case = _rewrite(next(c for c in CASES if c["id"] == "C05"))
    issuer, _ = rings
    req = case["request"]
    expl = explain_offline(
        token=issuer.sign(case["token_claims"]),
        role_arn=req["RoleArn"],
        session_name=req["RoleSessionName"],
        now=req["EvaluatedAt"],
        trust_policy=case["trust_policy"],
        providers=[OfflineProvider(LOCAL, "111111111111")],
        jwks=issuer.jwks(),
    )
    assert "system:serviceaccount:prd:sales.forecast-????????-????-????-????-????????????" in expl.fix
    names = [c["name"] for c in expl.checks]
    assert names[:4] == ["parameters", "role-arn", "token-format", "provider"]
    assert names[-2:] == ["trust-policy", "result"]


def test_offline_without_keys_says_signature_not_checked(rings: tuple[KeyRing, KeyRing]) -> None:
    case = _rewrite(next(c for c in CASES if c["id"] == "C33"))
    _, forger = rings
    req = case["request"]
    expl = explain_offline(
        token=forger.sign(case["token_claims"]),
        role_arn=req["RoleArn"],
        session_name=req["RoleSessionName"],
        now=req["EvaluatedAt"],
        trust_policy=case["trust_policy"],
        providers=[OfflineProvider(LOCAL, "111111111111")],
    )
    assert expl.outcome == "success"
    sig = next(c for c in expl.checks if c["name"] == "signature")
    assert (sig["ok"], sig["status"]) == (None, "skipped") and "not checked" in sig["detail"]
    role = next(c for c in expl.checks if c["name"] == "role")
    assert (role["ok"], role["status"]) == (None, "skipped") and "not checked" in role["detail"]
    assert "if the checks not made pass: signature, role" in expl.checks[-1]["detail"]
