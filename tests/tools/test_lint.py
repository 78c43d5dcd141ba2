"""`rolebridge lint`: each dangerous pattern of the issue is flagged; what grant generates passes."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rolebridge.platform.roles import UUID_PATTERN
from rolebridge.tools.grant import ClusterFacts, make_plan
from rolebridge.tools.lint import ProviderFacts, has_errors, lint_trust_policy

URL = "127.0.0.1:8443/oidc/c1"
ACCOUNT = "222222222222"
PROVIDER = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{URL}"
FACTS = ClusterFacts("c1", "111111111111", f"https://{URL}", "ab" * 20)
ROLEBRIDGE = str(Path(sys.executable).parent / "rolebridge")


def _policy(condition: dict[str, Any] | None, federated: str = PROVIDER) -> dict[str, Any]:
    st: dict[str, Any] = {"Effect": "Allow", "Principal": {"Federated": federated},
                          "Action": "sts:AssumeRoleWithWebIdentity"}
    if condition is not None:
        st["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [st]}


GOOD_SUB = f"system:serviceaccount:dev:sales.forecast-{UUID_PATTERN}"
AUD = {f"{URL}:aud": "sts.amazonaws.com"}

CASES = [
    ("no-sub-condition", "error", _policy({"StringEquals": AUD})),
    ("no-sub-condition", "error", _policy(None)),
    ("sub-wildcard-crosses-namespaces", "error", _policy({"StringEquals": AUD, "StringLike": {f"{URL}:sub": "*"}})),
    ("sub-wildcard-crosses-namespaces", "warning", _policy(
        {"StringEquals": AUD, "StringLike": {f"{URL}:sub": f"system:serviceaccount:*:sales.forecast-{UUID_PATTERN}"}})),
    ("sub-wildcard-crosses-projects", "error", _policy(
        {"StringEquals": AUD, "StringLike": {f"{URL}:sub": "system:serviceaccount:dev:sales-*"}})),
    ("missing-aud", "warning", _policy({"StringLike": {f"{URL}:sub": GOOD_SUB}})),
    ("stringequals-with-wildcard", "error", _policy({"StringEquals": {**AUD, f"{URL}:sub": GOOD_SUB}})),
    ("forallvalues-single-valued", "error", _policy(
        {"StringEquals": AUD, "ForAllValues:StringLike": {f"{URL}:sub": GOOD_SUB}})),
    ("condition-key-has-scheme", "error", _policy(
        {"StringEquals": {f"https://{URL}:aud": "sts.amazonaws.com"}, "StringLike": {f"https://{URL}:sub": GOOD_SUB}})),
    ("federated-other-account", "error", _policy(
        {"StringEquals": AUD, "StringLike": {f"{URL}:sub": GOOD_SUB}},
        federated=f"arn:aws:iam::111111111111:oidc-provider/{URL}")),
    ("project-name-underscore", "error", _policy(
        {"StringEquals": AUD, "StringLike": {f"{URL}:sub": f"system:serviceaccount:dev:sales_forecast-{UUID_PATTERN}"}})),
]


@pytest.mark.parametrize(("code", "severity", "doc"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_dangerous_pattern_is_flagged(code: str, severity: str, doc: dict[str, Any]) -> None:
    findings = lint_trust_policy(doc, source="t", role_account=ACCOUNT)
    hits = [f for f in findings if f.code == code]
    assert hits, [f.to_dict() for f in findings]
    assert hits[0].severity == severity
    assert hits[0].fix and hits[0].message


def test_provider_without_client_ids_is_flagged() -> None:
    doc = _policy({"StringEquals": AUD, "StringLike": {f"{URL}:sub": GOOD_SUB}})
    findings = lint_trust_policy(doc, role_account=ACCOUNT, providers=[ProviderFacts(PROVIDER, URL, ())])
    assert [f.code for f in findings] == ["provider-without-client-ids"]
    assert has_errors(findings)
    assert lint_trust_policy(doc, role_account=ACCOUNT,
                             providers=[ProviderFacts(PROVIDER, URL, ("sts.amazonaws.com",))]) == []


def test_what_grant_generates_passes() -> None:
    for envs in (["dev"], ["dev", "prd"]):
        plan = make_plan(FACTS, "sales_forecast", envs, ACCOUNT)
        assert lint_trust_policy(plan.trust_policy, role_account=ACCOUNT) == []
    everywhere = make_plan(FACTS, "sales_forecast", ["*"], ACCOUNT)
    findings = lint_trust_policy(everywhere.trust_policy, role_account=ACCOUNT)
    assert [(f.code, f.severity) for f in findings] == [("sub-wildcard-crosses-namespaces", "warning")]


def test_cli_exit_status_and_json(tmp_path: Path) -> None:
    good = make_plan(FACTS, "sales_forecast", ["dev"], ACCOUNT).trust_policy
    bad = copy.deepcopy(good)
    del bad["Statement"][0]["Condition"]["StringLike"]
    (tmp_path / "good.json").write_text(json.dumps(good))
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    env = {**os.environ, "ROLEBRIDGE_DATA_DIR": str(tmp_path / "data")}
    ok = subprocess.run([ROLEBRIDGE, "lint", str(tmp_path / "good.json"), "--account", ACCOUNT],
                        capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "no findings" in ok.stdout
    no = subprocess.run([ROLEBRIDGE, "lint", str(tmp_path / "bad.json"), "--json"], capture_output=True, text=True,
                        env=env)
    assert no.returncode == 1
    out = json.loads(no.stdout)
    assert out["errors"] == 1 and out["findings"][0]["code"] == "no-sub-condition"
