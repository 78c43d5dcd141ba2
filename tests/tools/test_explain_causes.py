"""`rolebridge explain --json` names each cause of issue 7 that sts-cases.json does not cover.

Offline from files where the cause lives in the token, the provider or the trust policy; live for
the two that are about reaching the issuer (a local HTTPS issuer of the test's own, like EKS's,
whose keys the server must fetch): a closed port is `jwks-unreachable`, a certificate the provider
does not pin is `tls-untrusted`, while STS itself answers both with AWS's one message.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ROLEBRIDGE, Server
from rolebridge.platform.roles import UUID_PATTERN
from rolebridge.tokens.keys import KeyRing
from rolebridge.tokens.remote import COULDNT_RETRIEVE
from rolebridge.tools.explain import CAUSES

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from local_issuer import LocalIssuer
from test_explain_cases import KIND_TO_CAUSE

HOST = "127.0.0.1:9443/cases/ABC"
ISSUER = f"https://{HOST}"
ACCOUNT = "111111111111"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/sales-forecast-dev"
PROVIDER = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{HOST}"
SUB = "system:serviceaccount:dev:sales.forecast-8d5f4a2e-0c1b-4e8a-9f1d-3b2c1a0e9f8d"
GOOD_SUB = f"system:serviceaccount:dev:sales.forecast-{UUID_PATTERN}"
AUD = {f"{HOST}:aud": "sts.amazonaws.com"}


def trust(condition: dict[str, Any], *extra: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Federated": PROVIDER}, "Action": "sts:AssumeRoleWithWebIdentity",
         "Condition": condition}, *extra]}


GOOD = trust({"StringEquals": AUD, "StringLike": {f"{HOST}:sub": GOOD_SUB}})
DENY_DEV = {"Sid": "NoDev", "Effect": "Deny", "Principal": {"Federated": PROVIDER},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringLike": {f"{HOST}:sub": "system:serviceaccount:dev:*"}}}

# cause: (token claims to change (None drops the claim), trust policy, AWS error code)
OFFLINE: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    "issuer-mismatch": ({"iss": ISSUER + "/"}, GOOD, "InvalidIdentityToken"),
    "audience-missing": ({"aud": None}, GOOD, "InvalidIdentityToken"),
    "condition-key-wrong-provider": ({}, trust({"StringEquals": AUD, "StringLike": {
        "127.0.0.1:9443/cases/OTHER:sub": GOOD_SUB}}), "AccessDenied"),
    "condition-wrong-claim": ({}, trust({"StringLike": {f"{HOST}:aud": GOOD_SUB}}), "AccessDenied"),
    "unsupported-condition-key": ({"email": "a@example.test"}, trust({"StringEquals": {
        **AUD, f"{HOST}:email": "a@example.test"}, "StringLike": {f"{HOST}:sub": GOOD_SUB}}), "AccessDenied"),
    "sub-service-account-mismatch": ({}, trust({"StringEquals": AUD, "StringLike": {
        f"{HOST}:sub": f"system:serviceaccount:dev:other.project-{UUID_PATTERN}"}}), "AccessDenied"),
    "wildcard-needs-stringlike": ({}, trust({"StringEquals": {
        **AUD, f"{HOST}:sub": "system:serviceaccount:dev:sales.forecast-*"}}), "AccessDenied"),
    "explicit-deny": ({}, trust({"StringEquals": AUD, "StringLike": {f"{HOST}:sub": GOOD_SUB}}, DENY_DEV),
                      "AccessDenied"),
}
LIVE = ("jwks-unreachable", "tls-untrusted")


def explain(*args: str, data_dir: Path) -> dict[str, Any]:
    env = {**os.environ, "ROLEBRIDGE_DATA_DIR": str(data_dir)}
    proc = subprocess.run([ROLEBRIDGE, "explain", *args, "--json"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def assert_explained(out: dict[str, Any], cause: str, error_code: str) -> None:
    assert (out["outcome"], out["error_code"], out["cause"]) == ("error", error_code, cause), out["checks"]
    failed = [c for c in out["checks"] if c["status"] == "fail"]
    assert failed[0]["cause"] == cause and failed[-1]["name"] == "result", failed
    assert out["fix"].endswith(".") and cause in CAUSES


@pytest.fixture(scope="module")
def ring(tmp_path_factory: pytest.TempPathFactory) -> tuple[KeyRing, Path]:
    root = tmp_path_factory.mktemp("causes")
    ring = KeyRing.create(root / "keys")
    (root / "jwks.json").write_text(json.dumps(ring.jwks()))
    return ring, root


@pytest.mark.parametrize("cause", list(OFFLINE))
def test_offline_cause(cause: str, ring: tuple[KeyRing, Path], tmp_path: Path) -> None:
    keys, root = ring
    changes, policy, error_code = OFFLINE[cause]
    now = int(time.time())
    claims: dict[str, Any] = {"iss": ISSUER, "sub": SUB, "aud": "sts.amazonaws.com", "iat": now, "exp": now + 3600}
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    (tmp_path / "t.jwt").write_text(keys.sign(claims))
    (tmp_path / "trust.json").write_text(json.dumps(policy))
    out = explain(ROLE, "--token", str(tmp_path / "t.jwt"), "--trust-policy", str(tmp_path / "trust.json"),
                  "--provider-url", ISSUER, "--client-id", "sts.amazonaws.com", "--jwks", str(root / "jwks.json"),
                  data_dir=tmp_path / "data")
    assert_explained(out, cause, error_code)


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    local = LocalIssuer(tmp_path_factory.mktemp("causes-issuer"), path="/id/CAUSES")
    yield local
    local.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("cause", LIVE)
def test_live_cause(cause: str, server: Server, issuer: LocalIssuer, tmp_path: Path) -> None:
    account = "330000000001" if cause == "tls-untrusted" else "330000000002"
    url = issuer.url if cause == "tls-untrusted" else f"https://127.0.0.1:{_closed_port()}/id/GONE"
    host = url.removeprefix("https://")
    iam = server.client("iam", account)
    # a thumbprint that is not the issuer's: its certificate is neither publicly trusted nor pinned
    provider = iam.create_open_id_connect_provider(Url=url, ClientIDList=["sts.amazonaws.com"],
                                                   ThumbprintList=["0" * 40])["OpenIDConnectProviderArn"]
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": provider}, "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{host}:aud": "sts.amazonaws.com"}, "StringLike": {f"{host}:sub": GOOD_SUB}}}]}
    role = iam.create_role(RoleName=f"{cause}-role", AssumeRolePolicyDocument=json.dumps(policy))["Role"]["Arn"]
    now = int(time.time())
    token = issuer.ring.sign({"iss": url, "sub": SUB, "aud": "sts.amazonaws.com", "iat": now, "exp": now + 3600})
    (tmp_path / "t.jwt").write_text(token)

    out = explain(role, "--token", str(tmp_path / "t.jwt"), data_dir=server.data_dir)
    assert_explained(out, cause, "InvalidIdentityToken")
    keys = next(c for c in out["checks"] if c["name"] == "keys")
    assert keys["status"] == "fail" and keys["cause"] == cause
    # STS says what AWS says, whichever the cause
    sts = boto3.client("sts", endpoint_url=server.url, verify=server.ca_bundle, region_name="us-east-1",
                       config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as err:
        sts.assume_role_with_web_identity(RoleArn=role, RoleSessionName="causes", WebIdentityToken=token)
    assert err.value.response["Error"]["Code"] == "InvalidIdentityToken"
    assert err.value.response["Error"]["Message"] == COULDNT_RETRIEVE


ELSEWHERE = {"role-missing": "tests/platform/test_runs.py (a run whose role does not exist)"}


def test_every_cause_but_other_is_produced_by_a_test() -> None:
    produced = {c for c in KIND_TO_CAUSE.values() if c} | set(OFFLINE) | set(LIVE) | set(ELSEWHERE)
    assert set(CAUSES) - produced == {"other"}, sorted(set(CAUSES) - produced - {"other"})
