"""`--aws` paths of grant, lint and explain: every botocore failure is one line (what, where, what to do).

Nothing here reaches real AWS: the endpoint is a closed local port or the test's own rolebridge
server, and the credential chain sees no files, no IMDS and only the keys a case sets.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import ROLEBRIDGE, Server

CLUSTER_ACCOUNT = "320000000001"
TARGET_ACCOUNT = "320000000002"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(server: Server, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    base.update({"HOME": str(server.home), "AWS_CONFIG_FILE": str(server.home / "no-config"),
                 "AWS_SHARED_CREDENTIALS_FILE": str(server.home / "no-credentials"),
                 "AWS_EC2_METADATA_DISABLED": "true", "ROLEBRIDGE_DATA_DIR": str(server.data_dir)})
    base.update(env)
    return subprocess.run([ROLEBRIDGE, *args], capture_output=True, text=True, env=base, timeout=120)


def tool_args(tool: str) -> list[str]:
    if tool == "grant":
        return ["grant", "--cluster", "awserr", "--project", "p_x", "--environment", "dev", "--account",
                TARGET_ACCOUNT, "--apply"]
    if tool == "lint":
        return ["lint", "--all", "--account", TARGET_ACCOUNT]
    return ["explain", f"arn:aws:iam::{TARGET_ACCOUNT}:role/r", "--token", "-"]


KEYS = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLEEXAMPLE00", "AWS_SECRET_ACCESS_KEY": "x" * 40}
CASES = {
    # case: (extra args, env, fragments of the one line)
    "closed-port": (["--aws", "--endpoint-url", "https://127.0.0.1:{closed}"], KEYS,
                    ["cannot reach IAM at https://127.0.0.1:{closed}", "--endpoint-url"]),
    "no-credentials": (["--aws", "--endpoint-url", "https://127.0.0.1:{closed}"], {},
                       ["no AWS credentials found for IAM at https://127.0.0.1:{closed}", "AWS_ACCESS_KEY_ID"]),
    "profile-missing": (["--profile", "nosuch", "--endpoint-url", "https://127.0.0.1:{closed}"], {},
                        ["AWS profile 'nosuch' not found", "--profile"]),
    "tls-untrusted": (["--aws", "--endpoint-url", "{url}"], KEYS, ["TLS to IAM at {url}", "AWS_CA_BUNDLE"]),
    "bad-keys": (["--aws", "--endpoint-url", "{url}"], {**KEYS, "AWS_CA_BUNDLE": "{ca}"},
                 ["at {url} failed: InvalidClientTokenId", "check AWS_ACCESS_KEY_ID"]),
}


@pytest.fixture(scope="module")
def cluster(server: Server) -> Server:
    server.cluster("awserr", CLUSTER_ACCOUNT)
    server.account(TARGET_ACCOUNT)
    return server


@pytest.mark.parametrize("tool", ["grant", "lint", "explain"])
@pytest.mark.parametrize("case", list(CASES))
def test_botocore_failures_are_one_line(cluster: Server, tool: str, case: str, tmp_path: Path) -> None:
    extra, env, fragments = CASES[case]
    subst = {"closed": str(closed_port()), "url": cluster.url, "ca": cluster.ca_bundle}
    args = [*tool_args(tool), *(a.format(**subst) for a in extra)]
    env = {k: v.format(**subst) for k, v in env.items()}
    if tool == "explain":
        token = cluster.token("awserr", "dev", "p.x-1")
        args[args.index("-")] = str(tmp_path / "t.jwt")
        (tmp_path / "t.jwt").write_text(token)
    res = run(cluster, *args, **env)
    assert res.returncode != 0, res.stdout + res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for fragment in fragments:
        assert fragment.format(**subst) in lines[0], lines[0]
