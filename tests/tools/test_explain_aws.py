"""`rolebridge explain --aws`: the role and OIDC providers read through IAM (here: a local rolebridge server
at --endpoint-url, with the target account's keys), the issuer's keys fetched as STS does, and the same
explanation as the in-process one."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from conftest import ROLEBRIDGE, Server, rb

CLUSTER_ACCOUNT = "340000000001"
TARGET_ACCOUNT = "340000000002"
PROJECT = "sales_forecast"


@pytest.fixture(scope="module")
def granted(server: Server) -> str:
    server.cluster("explain-aws", CLUSTER_ACCOUNT)
    server.account(TARGET_ACCOUNT)
    out = rb("grant", "--cluster", "explain-aws", "--project", PROJECT, "--environment", "dev", "--role-name",
             "explain-aws-dev", "--account", TARGET_ACCOUNT, "--apply", data_dir=server.data_dir)
    assert "created role" in out.stdout
    return f"arn:aws:iam::{TARGET_ACCOUNT}:role/explain-aws-dev"


def explain(server: Server, *args: str, account: str = TARGET_ACCOUNT) -> tuple[int, dict[str, Any], str]:
    keys = server.account(account)
    env = server.env(AWS_ACCESS_KEY_ID=keys["access_key_id"], AWS_SECRET_ACCESS_KEY=keys["secret_access_key"])
    proc = subprocess.run([ROLEBRIDGE, "explain", *args, "--json"], capture_output=True, text=True, env=env,
                          timeout=120)
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else {}, proc.stderr


@pytest.mark.parametrize(("environment", "role", "cause"), [
    ("dev", "explain-aws-dev", None),
    ("prd", "explain-aws-dev", "sub-namespace-mismatch"),
    ("dev", "explain-aws-nothere", "role-missing"),
])
def test_explain_reads_role_and_provider_through_iam(server: Server, granted: str, environment: str, role: str,
                                                     cause: str | None) -> None:
    role_arn = f"arn:aws:iam::{TARGET_ACCOUNT}:role/{role}"
    job = ("--cluster", "explain-aws", "--project", PROJECT, "--environment", environment)
    code, out, err = explain(server, role_arn, *job, "--aws", "--endpoint-url", server.url)
    assert code == (0 if cause is None else 1), err
    assert out["cause"] == cause, out["checks"]
    status = {c["name"]: c["status"] for c in out["checks"]}
    assert "skipped" not in status.values(), out["checks"]  # read from IAM: nothing is taken on trust
    if cause != "role-missing":
        assert status["signature"] == "ok" and status["role"] == "ok"  # keys fetched over the pinned TLS
    # the same explanation as the in-process replay on the server's own state
    local = json.loads(rb("explain", role_arn, *job, "--json", data_dir=server.data_dir, check=False).stdout)
    assert (out["outcome"], out["error_code"], out["cause"]) == (local["outcome"], local["error_code"],
                                                                 local["cause"])
    assert [c["name"] for c in out["checks"]] == [c["name"] for c in local["checks"]]


def test_explain_from_a_token_file_with_endpoint_url_alone(server: Server, granted: str, tmp_path: Any) -> None:
    token = server.token("explain-aws", "dev", "sales.forecast-8d5f4a2e-0c1b-4e8a-9f1d-3b2c1a0e9f8d")
    (tmp_path / "t.jwt").write_text(token)
    code, out, err = explain(server, granted, "--token", str(tmp_path / "t.jwt"), "--endpoint-url", server.url)
    assert code == 0 and out["outcome"] == "success", err


def test_explain_with_credentials_of_another_account_says_so(server: Server, granted: str) -> None:
    code, out, err = explain(server, granted, "--cluster", "explain-aws", "--project", PROJECT, "--environment",
                             "dev", "--aws", "--endpoint-url", server.url, account=CLUSTER_ACCOUNT)
    assert code == 1 and out == {}
    assert err.strip() == (f"error: ValidationError: The IAM credentials are of account {CLUSTER_ACCOUNT}, but "
                           f"the role is in {TARGET_ACCOUNT}: use credentials (or --profile) of {TARGET_ACCOUNT}.")


def test_aws_and_offline_files_exclude_each_other(server: Server, granted: str, tmp_path: Any) -> None:
    (tmp_path / "t.jwt").write_text("x.y.z")
    code, _, err = explain(server, granted, "--token", str(tmp_path / "t.jwt"), "--aws", "--provider-url",
                           "https://h/x")
    assert code == 1 and "leave out --trust-policy, --provider-url" in err and "Traceback" not in err
