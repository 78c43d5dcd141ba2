"""`rolebridge explain` offline, from files, through the command: what it could not check is never `ok`."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import ROLEBRIDGE
from rolebridge.tokens.keys import KeyRing

ISSUER = "https://127.0.0.1:8443/oidc/demo"
ROLE = "arn:aws:iam::999999999999:role/nothere"
SA = "cross.account.sample-8d5f4a2e-0c1b-4e8a-9f1d-3b2c1a0e9f8d"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    root = tmp_path_factory.mktemp("explain-offline")
    ring = KeyRing.create(root / "keys")
    exp = int(time.time()) + 3600
    (root / "t.jwt").write_text(ring.sign({"iss": ISSUER, "sub": f"system:serviceaccount:dev:{SA}",
                                           "aud": ["sts.amazonaws.com"], "iat": exp - 3600, "exp": exp}))
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
        "Principal": {"Federated": "arn:aws:iam::999999999999:oidc-provider/127.0.0.1:8443/oidc/demo"},
        "Condition": {"StringLike": {"127.0.0.1:8443/oidc/demo:sub": "system:serviceaccount:dev:cross.account.sample-*"}}}]}
    (root / "trust.json").write_text(json.dumps(trust))
    (root / "jwks.json").write_text(json.dumps(ring.jwks()))
    return root, exp


def explain(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ROLEBRIDGE_DATA_DIR": str(root / "data")}
    return subprocess.run([ROLEBRIDGE, "explain", ROLE, "--token", str(root / "t.jwt"), "--trust-policy",
                           str(root / "trust.json"), "--client-id", "sts.amazonaws.com", *args],
                          capture_output=True, text=True, env=env, timeout=60)


def test_unchecked_checks_are_skipped_not_ok(files: tuple[Path, int]) -> None:
    root, exp = files
    res = explain(root, "--provider-url", ISSUER)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = {line.split()[1]: line for line in res.stdout.splitlines() if line[:4] in ("ok  ", "skip", "FAIL")}
    assert lines["role"].startswith("skip") and "exists" not in lines["role"], res.stdout
    assert lines["signature"].startswith("skip"), res.stdout
    assert not any(line.startswith("ok") and "not checked" in line for line in lines.values()), res.stdout
    iso = dt.datetime.fromtimestamp(exp, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"valid until {iso}" in lines["expiry"] and str(exp) not in lines["expiry"], lines["expiry"]
    out = json.loads(explain(root, "--provider-url", ISSUER, "--json").stdout)
    status = {c["name"]: (c["ok"], c["status"]) for c in out["checks"]}
    assert status["role"] == (None, "skipped") and status["signature"] == (None, "skipped")
    assert status["expiry"] == (True, "ok") and status["trust-policy"] == (True, "ok")
    # with the issuer's keys the signature is checked
    signed = json.loads(explain(root, "--provider-url", ISSUER, "--jwks", str(root / "jwks.json"), "--json").stdout)
    assert {c["name"]: c["status"] for c in signed["checks"]}["signature"] == "ok"


def test_token_issuer_differs_from_provider_url(files: tuple[Path, int]) -> None:
    root, _ = files
    res = explain(root, "--provider-url", "https://127.0.0.1:9443/oidc/demo", "--json")
    assert res.returncode == 1
    out = json.loads(res.stdout)
    assert (out["outcome"], out["error_code"], out["cause"]) == ("error", "InvalidIdentityToken", "issuer-mismatch")
    provider = next(c for c in out["checks"] if c["name"] == "provider")
    assert provider["status"] == "fail"
    assert provider["seen"] == ISSUER and provider["expected"] == "https://127.0.0.1:9443/oidc/demo"
    assert f"the token's issuer (iss) is '{ISSUER}'" in provider["detail"]
    assert "--provider-url" in provider["detail"]
