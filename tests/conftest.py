"""Shared fixtures: a real `rolebridge server` on a free port, and clients configured the standard way.

Tests talk to the server as users do: boto3 and the AWS CLI through the standard variables
(AWS_ENDPOINT_URL_*, AWS_CA_BUNDLE), with HOME pointed at a temporary dir so the CLI's
credential cache cannot leak between tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

VENV_BIN = Path(sys.executable).parent
ROLEBRIDGE = str(VENV_BIN / "rolebridge")
AWS_CLI = str(VENV_BIN / "aws")


def rb(*args: str, data_dir: Path, check: bool = True, env: dict[str, str] | None = None,
       timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the `rolebridge` command like a user would."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("ROLEBRIDGE_DATABASE_URL", None) if env is None or "ROLEBRIDGE_DATABASE_URL" not in env else None
    proc = subprocess.run([ROLEBRIDGE, *args, "--data-dir", str(data_dir)] if "--" not in args else
                          [ROLEBRIDGE, *_insert_before_dashdash(args, ["--data-dir", str(data_dir)])],
                          capture_output=True, text=True, env=full_env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"rolebridge {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def aws_error(exc: pytest.ExceptionInfo[Any]) -> tuple[str, str, int]:
    """A boto3 ClientError's AWS code, message and HTTP status."""
    r = exc.value.response
    return r["Error"]["Code"], r["Error"]["Message"], r["ResponseMetadata"]["HTTPStatusCode"]


def _insert_before_dashdash(args: tuple[str, ...], extra: list[str]) -> list[str]:
    i = args.index("--")
    return [*args[:i], *extra, *args[i:]]


@dataclass
class Server:
    data_dir: Path
    url: str
    ca_bundle: str
    process: subprocess.Popen[bytes]
    home: Path
    accounts: dict[str, dict[str, str]] = field(default_factory=dict)

    def account(self, account_id: str) -> dict[str, str]:
        if account_id not in self.accounts:
            out = rb("account", "create", account_id, "--json", data_dir=self.data_dir)
            self.accounts[account_id] = json.loads(out.stdout)
        return self.accounts[account_id]

    def client(self, service: str, account_id: str | None = None, **kw: Any) -> Any:
        creds: dict[str, str] = {}
        if account_id is not None:
            keys = self.account(account_id)
            creds = {"aws_access_key_id": keys["access_key_id"], "aws_secret_access_key": keys["secret_access_key"]}
        creds.update(kw)
        return boto3.client(service, endpoint_url=self.url, verify=self.ca_bundle, region_name="us-east-1",
                            config=Config(retries={"max_attempts": 1}), **creds)

    def cluster(self, name: str, account_id: str) -> dict[str, Any]:
        self.account(account_id)
        existing = json.loads(rb("cluster", "list", "--json", data_dir=self.data_dir).stdout)
        for c in existing:
            if c["name"] == name:
                return c
        return json.loads(rb("cluster", "create", name, "--account", account_id, "--json",
                             data_dir=self.data_dir).stdout)

    def token(self, cluster: str, namespace: str, service_account: str, *extra: str) -> str:
        return rb("token", "--cluster", cluster, "--namespace", namespace, "--service-account", service_account,
                  *extra, data_dir=self.data_dir).stdout.strip()

    def env(self, **extra: str) -> dict[str, str]:
        """An environment for SDK subprocesses: no ambient credentials, endpoints and CA set."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"HOME": str(self.home), "AWS_ENDPOINT_URL_STS": self.url, "AWS_ENDPOINT_URL_IAM": self.url,
                    "AWS_CA_BUNDLE": self.ca_bundle, "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
                    "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": str(self.home / "none"),
                    "AWS_SHARED_CREDENTIALS_FILE": str(self.home / "none"), "ROLEBRIDGE_DATA_DIR": str(self.data_dir)})
        env.update(extra)
        return env


def start_server(data_dir: Path, home: Path, *extra: str, env: dict[str, str] | None = None,
                 timeout: float = 30) -> Server:
    data_dir.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    server_json = data_dir / "server.json"
    server_json.unlink(missing_ok=True)
    log = open(data_dir / "server.log", "ab")
    process = subprocess.Popen([ROLEBRIDGE, "server", "--data-dir", str(data_dir), "--port", "0", *extra],
                               stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {(data_dir / 'server.log').read_text()[-3000:]}")
        if server_json.exists():
            try:
                info = json.loads(server_json.read_text())
                if info.get("pid") == process.pid:
                    return Server(data_dir, info["url"], info["ca_bundle"], process, home)
            except ValueError:
                pass
        time.sleep(0.05)
    process.kill()
    raise AssertionError("server did not write server.json in time")


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the session; tests use their own account IDs or names to stay independent."""
    root = tmp_path_factory.mktemp("rolebridge")
    srv = start_server(root / "data", root / "home")
    yield srv
    stop_server(srv)


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[Server]:
    """A server of the test's own, for tests that change server-wide state."""
    srv = start_server(tmp_path / "data", tmp_path / "home")
    yield srv
    stop_server(srv)


# PostgreSQL: `pg_cluster` (session, throwaway initdb cluster) and `pg_url` (a fresh database); see tests/pg.py
from pg import pg_cluster, pg_url  # noqa: E402, F401
