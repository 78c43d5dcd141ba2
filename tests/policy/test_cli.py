"""`rolebridge policy evaluate|validate` through the installed command, as users run it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROLEBRIDGE = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "rolebridge"
pytestmark = pytest.mark.skipif(not ROLEBRIDGE.exists(), reason="needs the project venv")

PROV = "arn:aws:iam::111111111111:oidc-provider/oidc.example.test/id/ABC"
H = "oidc.example.test/id/ABC"


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ROLEBRIDGE), "policy", *args], input=stdin, capture_output=True, text=True, timeout=60)


def evaluate_input(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "policies": [
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "Read",
                        "Effect": "Allow",
                        "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::b/*",
                    }
                ],
            }
        ],
        "resource_policy": None,
        "request": {
            "principal": {"AWS": "arn:aws:iam::111111111111:user/alice"},
            "action": "s3:GetObject",
            "resource": "arn:aws:s3:::b/k",
            "context": {"aws:SecureTransport": True},
        },
    }
    data.update(overrides)
    return data


def test_evaluate_allow_from_file(tmp_path: Path) -> None:
    f = tmp_path / "in.json"
    f.write_text(json.dumps(evaluate_input()))
    res = run("evaluate", str(f))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["decision"] == "Allow"
    assert out["reasons"][0]["statement"] == "Read"
    assert out["reasons"][0]["policy"] == "policies[0]"


def test_evaluate_explicit_deny_from_stdin() -> None:
    data = evaluate_input(
        resource_policy={
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "TlsOnly",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": "*",
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )
    data["request"]["context"] = {"aws:SecureTransport": False}
    res = run("evaluate", "-", stdin=json.dumps(data))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["decision"] == "ExplicitDeny"
    assert out["reasons"][0]["statement"] == "TlsOnly"
    assert out["reasons"][0]["effect"] == "Deny"


def test_evaluate_implicit_deny_explains_nearest_miss() -> None:
    data = evaluate_input()
    data["request"]["action"] = "s3:PutObject"
    res = run("evaluate", "-", stdin=json.dumps(data))
    assert res.returncode == 0
    out = json.loads(res.stdout)
    assert out["decision"] == "ImplicitDeny"
    assert out["nearest_miss"]["element"] == "Action"
    assert out["nearest_miss"]["expected"] == ["s3:GetObject"]
    assert out["nearest_miss"]["seen"] == ["s3:PutObject"]


def test_evaluate_trust_like_request_with_federated_principal() -> None:
    data = {
        "policies": [],
        "resource_policy": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": PROV},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Resource": "*",
                    "Condition": {"StringEquals": {f"{H}:sub": "system:serviceaccount:team-a:app-sa"}},
                }
            ],
        },
        "request": {
            "principal": {"Federated": PROV},
            "action": "sts:AssumeRoleWithWebIdentity",
            "resource": "arn:aws:iam::111111111111:role/app-role",
            "context": {f"{H}:sub": "system:serviceaccount:team-b:app-sa"},
        },
    }
    res = run("evaluate", "-", stdin=json.dumps(data))
    out = json.loads(res.stdout)
    assert out["decision"] == "ImplicitDeny"
    miss = out["nearest_miss"]
    assert (miss["key"], miss["operator"]) == (f"{H}:sub", "StringEquals")
    assert miss["expected"] == ["system:serviceaccount:team-a:app-sa"]
    assert miss["seen"] == ["system:serviceaccount:team-b:app-sa"]
    assert miss["failures"][0]["claim"] == "sub"


@pytest.mark.parametrize(
    ("stdin", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        (json.dumps({"policies": []}), "no request"),
        (json.dumps(evaluate_input(request={"action": 5})), "request.action"),
        (json.dumps(evaluate_input(request={"action": "s3GetObject"})), "request.action 's3GetObject' is not svc:Name"),
        (json.dumps(evaluate_input(request={"action": "s3:"})), "is not svc:Name"),
        (json.dumps(evaluate_input(request={"action": "s3:X", "principal": {"Bogus": "x"}})), "principal"),
        (json.dumps(evaluate_input(request={"action": "s3:X", "context": [1]})), "request.context"),
        (json.dumps(evaluate_input(policies={"Statement": []})), "policies must be an array"),
        (
            json.dumps(evaluate_input(policies=[{"Statement": [{"Effect": "Allow"}]}])),
            "policies[0]: MalformedPolicyDocument: Policy document must be version 2012-10-17 or greater.",
        ),
        (
            json.dumps(evaluate_input(resource_policy={"Version": "2012-10-17", "Statement": {"Effect": "x"}})),
            "resource_policy: MalformedPolicyDocument: Syntax errors in policy.",
        ),
    ],
)
def test_evaluate_invalid_input_exits_2(stdin: str, fragment: str) -> None:
    res = run("evaluate", "-", stdin=stdin)
    assert res.returncode == 2
    assert fragment in res.stderr
    assert res.stdout == ""


TRUST_DOC = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Federated": PROV},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringLike": {f"{H}:sub": "system:serviceaccount:dev:*"}},
        }
    ],
}


def trust_input(sub: str, doc: dict[str, Any] = TRUST_DOC) -> dict[str, Any]:
    return {
        "policies": [],
        "resource_policy": doc,
        "request": {
            "principal": {"Federated": PROV},
            "action": "sts:AssumeRoleWithWebIdentity",
            "resource": "arn:aws:iam::111111111111:role/app-role",
            "context": {f"{H}:sub": sub},
        },
    }


def test_evaluate_role_trust_policy_given_as_resource_policy() -> None:
    """AWS trust policies have no Resource: for an assume action on a role ARN, it is the role's trust policy."""
    assert "valid trust policy" in run("validate", "-", stdin=json.dumps(TRUST_DOC)).stdout
    res = run("evaluate", "-", stdin=json.dumps(trust_input("system:serviceaccount:dev:app")))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["decision"] == "Allow"
    assert out["reasons"][0]["kind"] == "trust"
    res = run("evaluate", "-", stdin=json.dumps(trust_input("system:serviceaccount:prd:app")))
    out = json.loads(res.stdout)
    assert out["decision"] == "ImplicitDeny"
    assert out["nearest_miss"]["key"] == f"{H}:sub"
    # said explicitly, the same; as a resource policy it lacks a Resource, as AWS would say
    assert json.loads(run("evaluate", "--kind", "trust", "-",
                          stdin=json.dumps(trust_input("system:serviceaccount:dev:app"))).stdout)["decision"] == "Allow"
    res = run("evaluate", "--kind", "resource", "-", stdin=json.dumps(trust_input("system:serviceaccount:dev:app")))
    assert res.returncode == 2 and "Policy statement must contain resources." in res.stderr
    with_resource = json.loads(json.dumps(TRUST_DOC))
    with_resource["Statement"][0]["Resource"] = "*"
    res = run("evaluate", "--kind", "trust", "-", stdin=json.dumps(trust_input("system:serviceaccount:dev:a",
                                                                                 with_resource)))
    assert res.returncode == 2 and "Has prohibited field Resource." in res.stderr
    res = run("evaluate", "--kind", "identity", "-", stdin=json.dumps(trust_input("x")))
    assert res.returncode == 2 and "--kind must be one of trust, resource" in res.stderr
    # not an assume on a role: still a resource policy, which needs a Resource
    other = trust_input("system:serviceaccount:dev:app")
    other["request"]["resource"] = "arn:aws:s3:::bucket"
    res = run("evaluate", "-", stdin=json.dumps(other))
    assert res.returncode == 2 and "must contain resources" in res.stderr


def test_evaluate_missing_file_exits_2(tmp_path: Path) -> None:
    res = run("evaluate", str(tmp_path / "nope.json"))
    assert res.returncode == 2
    assert "cannot read" in res.stderr


def test_validate_valid_identity_policy() -> None:
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    res = run("validate", "-", stdin=json.dumps(doc))
    assert res.returncode == 0
    assert "valid identity policy" in res.stdout


def test_validate_reports_aws_message_and_exits_1() -> None:
    doc = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "GetObject", "Resource": "*"}],
    }
    res = run("validate", "-", stdin=json.dumps(doc))
    assert res.returncode == 1
    assert res.stdout.startswith(
        "MalformedPolicyDocument: Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
    )
    assert "[statement 0, Action]" in res.stdout


def test_validate_detects_trust_policies() -> None:
    doc = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Federated": PROV}, "Action": "sts:AssumeRoleWithWebIdentity"}],
    }
    res = run("validate", "-", stdin=json.dumps(doc))
    assert res.returncode == 0, res.stdout
    assert "valid trust policy" in res.stdout
    res = run("validate", "--kind", "identity", "--json", "-", stdin=json.dumps(doc))
    assert res.returncode == 1
    out = json.loads(res.stdout)
    assert out["valid"] is False
    assert out["problems"][0]["message"] == "Policy document should not specify a principal."


def test_validate_trust_with_resource(tmp_path: Path) -> None:
    doc = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Federated": PROV}, "Action": "sts:AssumeRole", "Resource": "*"}
        ],
    }
    f = tmp_path / "trust.json"
    f.write_text(json.dumps(doc))
    res = run("validate", "--kind", "trust", str(f))
    assert res.returncode == 1
    assert "Has prohibited field Resource." in res.stdout


def test_validate_invalid_json_is_a_problem_not_a_crash() -> None:
    res = run("validate", "-", stdin="{")
    assert res.returncode == 1
    assert "MalformedPolicyDocument: Syntax errors in policy." in res.stdout


def test_validate_bad_kind_exits_2() -> None:
    res = run("validate", "--kind", "nope", "-", stdin="{}")
    assert res.returncode == 2
    assert "--kind must be one of" in res.stderr


def test_evaluate_trust_policy_extension() -> None:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Web",
                "Effect": "Allow",
                "Principal": {"Federated": PROV},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringLike": {f"{H}:sub": "system:serviceaccount:team-a:*"}},
            }
        ],
    }
    request = {
        "principal": {"Federated": PROV},
        "action": "sts:AssumeRoleWithWebIdentity",
        "resource": "arn:aws:iam::111111111111:role/app-role",
        "context": {f"{H}:sub": "system:serviceaccount:team-a:app"},
    }
    res = run("evaluate", "-", stdin=json.dumps({"trust_policy": trust, "request": request}))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert (out["decision"], out["reasons"][0]["statement"]) == ("Allow", "Web")
    both = {"trust_policy": trust, "policies": [trust], "request": request}
    res = run("evaluate", "-", stdin=json.dumps(both))
    assert res.returncode == 2
    assert "trust_policy is evaluated alone" in res.stderr


def test_evaluate_reports_type_mismatch_errors() -> None:
    data = evaluate_input(
        policies=[
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "s3:GetObject",
                        "Resource": "*",
                        "Condition": {"NumericLessThan": {"s3:max-keys": "10"}},
                    }
                ],
            }
        ]
    )
    data["request"]["context"] = {"s3:max-keys": "ten"}
    res = run("evaluate", "-", stdin=json.dumps(data))
    out = json.loads(res.stdout)
    assert out["decision"] == "ImplicitDeny"
    assert out["errors"] == [
        "policies[0] statement 0: NumericLessThan cannot compare s3:max-keys value 'ten'; the condition is false"
    ]
    assert out["nearest_miss"]["failures"][0]["type_mismatch"] is True
