"""`rolebridge policy evaluate|validate` against DESIGN.md's I/O contract, literally.

`"principal": null` is the unnamed caller holding the identity policies (an identity Allow is an
Allow); anonymous must be asked for with "*". Exit 0 for every decision, 2 for bad input;
validate exits 0 / 1.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROLEBRIDGE = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "rolebridge"
pytestmark = pytest.mark.skipif(not ROLEBRIDGE.exists(), reason="needs the project venv")

ALLOW_GET = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
DENY_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}


def evaluate(data: Any) -> tuple[int, dict[str, Any] | None, str]:
    res = subprocess.run([str(ROLEBRIDGE), "policy", "evaluate", "-"], input=json.dumps(data) if not isinstance(
        data, str) else data, capture_output=True, text=True, timeout=60)
    out = json.loads(res.stdout) if res.returncode == 0 else None
    return res.returncode, out, res.stderr


def request(principal: Any = None, action: str = "s3:GetObject") -> dict[str, Any]:
    return {"principal": principal, "action": action, "resource": "arn:aws:s3:::b/k", "context": {}}


@pytest.mark.parametrize(("policies", "principal", "decision"), [
    ([ALLOW_GET], None, "Allow"),
    ([ALLOW_GET, DENY_ALL], None, "ExplicitDeny"),
    ([], None, "ImplicitDeny"),
    ([ALLOW_GET], "*", "ImplicitDeny"),  # anonymous has no identity side
])
def test_null_principal_is_the_policies_holder(policies: list, principal: Any, decision: str) -> None:
    code, out, err = evaluate({"policies": policies, "resource_policy": None, "request": request(principal)})
    assert code == 0, err
    assert out is not None and out["decision"] == decision
    assert isinstance(out["reasons"], list) and out["reasons"]


def test_absent_principal_key_is_the_same_as_null() -> None:
    code, out, err = evaluate({"policies": [ALLOW_GET], "request": {"action": "s3:GetObject", "resource": "*"}})
    assert code == 0, err
    assert out is not None and out["decision"] == "Allow"


def test_null_principal_matches_only_a_wildcard_resource_policy() -> None:
    star = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}]}
    named = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "111111111111"}, "Action": "s3:GetObject", "Resource": "*"}]}
    assert evaluate({"policies": [], "resource_policy": star, "request": request()})[1]["decision"] == "Allow"
    assert evaluate({"policies": [], "resource_policy": named, "request": request()})[1]["decision"] == "ImplicitDeny"


@pytest.mark.parametrize("bad", ["not json", "[]", '{"policies": []}', '{"policies": "x", "request": {}}'])
def test_invalid_input_exits_2_with_a_message_and_no_traceback(bad: str) -> None:
    code, _out, err = evaluate(bad)
    assert code == 2
    assert err.startswith("error: ") and "Traceback" not in err


def test_deeply_nested_json_is_invalid_input_not_a_traceback() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    code, _out, err = evaluate(deep)
    assert code == 2 and err.startswith("error: input is not valid JSON") and "Traceback" not in err
    res = subprocess.run([str(ROLEBRIDGE), "policy", "validate", "-"], input=deep, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stdout.startswith("MalformedPolicyDocument: Syntax errors in policy.")
