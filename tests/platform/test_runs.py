"""The job platform end to end against the live server: project files, recorded runs, retries,
limits, cancellation, logs, token refresh, and the platform API used by the CLI.

Accounts 330000000001 (the cluster's) and 330000000002 (the data account of the cross-account
walkthrough) belong to this module only.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import ROLEBRIDGE, Server, rb

CLUSTER_ACCOUNT = "330000000001"
DATA_ACCOUNT = "330000000002"
CLUSTER = "platjobs"
PROJECT = "cross_account_sample"
PY = sys.executable
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
WHOAMI = f"{PY} -c \"import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])\""


def trust(provider_arn: str, host: str, environment: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity", "Principal": {"Federated": provider_arn},
        "Condition": {"StringLike": {f"{host}:sub":
                                     f"system:serviceaccount:{environment}:cross.account.sample-????????-????-????-????-????????????"}}}]})


@pytest.fixture(scope="module")
def walkthrough(server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cluster = server.cluster(CLUSTER, CLUSTER_ACCOUNT)
    host = cluster["provider_url"]
    data_iam = server.client("iam", DATA_ACCOUNT)
    provider = data_iam.create_open_id_connect_provider(
        Url=cluster["oidc_url"], ClientIDList=["sts.amazonaws.com"], ThumbprintList=[cluster["thumbprint"]])
    data_iam.create_role(RoleName="cross-account-sample-dev",
                         AssumeRolePolicyDocument=trust(provider["OpenIDConnectProviderArn"], host, "dev"))
    # a same-account role, named bare in the project file (the cluster's account has the provider already)
    own_provider = f"arn:aws:iam::{CLUSTER_ACCOUNT}:oidc-provider/{host}"
    server.client("iam", CLUSTER_ACCOUNT).create_role(
        RoleName="sample-dev", AssumeRolePolicyDocument=trust(own_provider, host, "dev"))
    project_dir = tmp_path_factory.mktemp("project")
    (project_dir / "rolebridge.yaml").write_text(f"""
project: {PROJECT}
aws_role: "arn:aws:iam::{DATA_ACCOUNT}:role/cross-account-sample-{{{{ env }}}}"
jobs:
  cross-account:
    command: {WHOAMI}
  same-account:
    command: [{PY}, -c, "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])"]
    aws_role: "sample-{{{{ env }}}}"
    env: {{GREETING: hello}}
""")
    synced = json.loads(rb("job", "sync", str(project_dir), "--json", data_dir=server.data_dir).stdout)
    assert [j["name"] for j in synced["jobs"]] == ["cross-account", "same-account"]
    return {"dir": project_dir, "cluster": cluster}


def runs_json(server: Server, *args: str) -> list[dict[str, Any]]:
    return json.loads(rb("runs", "list", "--json", "--limit", "200", *args, data_dir=server.data_dir,
                         env=server.env()).stdout)


def test_project_file_two_jobs_and_runs_list(server: Server, walkthrough: dict[str, Any]) -> None:
    out1 = rb("job", "run", f"{PROJECT}/cross-account", "--environment", "dev", "--cluster", CLUSTER,
              "--project-dir", str(walkthrough["dir"]), data_dir=server.data_dir, env=server.env())
    out2 = rb("job", "run", f"{PROJECT}/same-account", "--environment", "dev", "--cluster", CLUSTER,
              data_dir=server.data_dir, env=server.env())
    assert re.fullmatch(rf"arn:aws:sts::{DATA_ACCOUNT}:assumed-role/cross-account-sample-dev/cross\.account\.sample-{UUID}\n",
                        out1.stdout), out1.stdout
    assert re.fullmatch(rf"arn:aws:sts::{CLUSTER_ACCOUNT}:assumed-role/sample-dev/cross\.account\.sample-{UUID}\n",
                        out2.stdout), out2.stdout
    rows = {r["job"]: r for r in runs_json(server, "--project", PROJECT) if r["job"]}
    cross, same = rows["cross-account"], rows["same-account"]
    assert cross["status"] == same["status"] == "succeeded"
    assert cross["exit_code"] == 0 and cross["attempts"] == 1
    assert cross["role_arn"] == f"arn:aws:iam::{DATA_ACCOUNT}:role/cross-account-sample-dev"  # project default
    assert same["role_arn"] == f"arn:aws:iam::{CLUSTER_ACCOUNT}:role/sample-dev"  # the job's own, bare name
    assert cross["assume"]["ok"] is True
    assert cross["assume"]["assumed_arn"] == out1.stdout.strip()  # the first assume = who the job became
    assert cross["subject"] == f"system:serviceaccount:dev:{cross['service_account']}"
    assert re.fullmatch(rf"cross\.account\.sample-{UUID}", cross["service_account"])
    assert cross["started_at"] <= cross["ended_at"]
    # the table view shows them too, through the API (a server is running)
    table = rb("runs", "list", data_dir=server.data_dir, env=server.env()).stdout
    assert "succeeded" in table and "cross-acc" in table


def test_explicit_role_wins_over_job_and_default(server: Server, walkthrough: dict[str, Any]) -> None:
    out = rb("job", "run", f"{PROJECT}/same-account", "--environment", "dev", "--cluster", CLUSTER,
             "--aws-role", f"arn:aws:iam::{DATA_ACCOUNT}:role/cross-account-sample-{{{{ env }}}}",
             data_dir=server.data_dir, env=server.env())
    assert out.stdout.startswith(f"arn:aws:sts::{DATA_ACCOUNT}:assumed-role/cross-account-sample-dev/")


def test_contract_run_is_recorded_and_refusal_explained(server: Server, walkthrough: dict[str, Any]) -> None:
    ok = rb("run", "--cluster", CLUSTER, "--project", PROJECT, "--environment", "dev", "--aws-role",
            f"arn:aws:iam::{DATA_ACCOUNT}:role/cross-account-sample-dev", "--", PY, "-c",
            "import os,sys; print('out', os.environ['AWS_ROLE_SESSION_NAME']); print('err', file=sys.stderr)",
            data_dir=server.data_dir, env=server.env())
    assert ok.stdout.startswith("out cross.account.sample-") and ok.stderr == "err\n"
    bad = rb("run", "--cluster", CLUSTER, "--project", PROJECT, "--environment", "prod", "--", "true",
             data_dir=server.data_dir, env=server.env(), check=False)
    assert bad.returncode == 1
    assert "AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity" in bad.stderr
    assert f"role arn:aws:iam::{DATA_ACCOUNT}:role/cross-account-sample-prod does not exist" in bad.stderr
    rows = runs_json(server, "--project", PROJECT)
    good = next(r for r in rows if r["service_account"] == ok.stdout.split()[1])
    assert good["status"] == "succeeded" and good["job"] is None
    log = rb("runs", "logs", good["id"], data_dir=server.data_dir, env=server.env()).stdout
    assert "out cross.account.sample-" in log and "err\n" in log
    refused = next(r for r in rows if r["environment"] == "prod")
    assert refused["status"] == "failed" and refused["exit_code"] is None
    assert refused["assume"]["ok"] is False
    assert refused["assume"]["error_code"] == "AccessDenied"
    assert refused["assume"]["cause"] == "role-missing"
    assert "create arn:aws:iam::330000000002:role/cross-account-sample-prod" in refused["assume"]["fix"]
    shown = rb("runs", "show", refused["id"], data_dir=server.data_dir, env=server.env()).stdout
    assert "refused: AccessDenied" in shown and "does not exist" in shown


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def _wait_status(server: Server, run_id: str, statuses: set[str], timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = json.loads(rb("runs", "show", run_id, "--json", data_dir=server.data_dir, env=server.env()).stdout)
        if row["status"] in statuses:
            return row
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} never reached {statuses}: {row}")


def test_cancel_leaves_no_process_and_no_token(server: Server, walkthrough: dict[str, Any], tmp_path: Path) -> None:
    child_pid = tmp_path / "child.pid"
    script = f"sleep 120 & echo $! > {child_pid}; echo started; wait"
    proc = subprocess.Popen([ROLEBRIDGE, "run", "--cluster", CLUSTER, "--project", PROJECT, "--environment", "dev",
                             "--data-dir", str(server.data_dir), "--", "sh", "-c", script],
                            env=server.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not child_pid.exists() or not child_pid.read_text().strip():
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        row = next(r for r in runs_json(server, "--project", PROJECT, "--status", "running")
                   if r["command"][:2] == ["sh", "-c"] and r["command"][2] == script)
        token_dir = server.data_dir / "runs" / row["id"] / "identity"
        assert (token_dir / "token").stat().st_mode & 0o777 == 0o600
        job_pid = json.loads(rb("runs", "show", row["id"], "--json", data_dir=server.data_dir,
                                env=server.env()).stdout)
        cancelled = json.loads(rb("runs", "cancel", row["id"], "--json", data_dir=server.data_dir,
                                  env=server.env()).stdout)
        assert cancelled["status"] == "cancelled", cancelled
        assert proc.wait(timeout=15) != 0
        grandchild = int(child_pid.read_text())
        assert _state(grandchild) in (None, "Z"), f"sleep {grandchild} survived the cancel"
        assert not token_dir.exists()
        assert not list((server.data_dir / "runs").glob("*/identity/token"))
        assert job_pid["status"] == "running"
        final = _wait_status(server, row["id"], {"cancelled"})
        assert final["ended_at"] is not None
    finally:
        if proc.poll() is None:
            proc.kill()


def test_retries_with_backoff(server: Server, walkthrough: dict[str, Any], tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    project_dir = tmp_path / "flaky"
    project_dir.mkdir()
    (project_dir / "rolebridge.yaml").write_text(f"""
project: flaky_project
jobs:
  flaky:
    command: [sh, -c, "echo x >> {counter}; test $(wc -l < {counter}) -ge 3"]
    retries: 3
    retry_backoff: 0.2
  broken:
    command: [sh, -c, "echo nope; exit 7"]
    retries: 1
    retry_backoff: 0
""")
    start = time.monotonic()
    rb("job", "run", "flaky_project/flaky", "--environment", "dev", "--cluster", CLUSTER, "--project-dir",
       str(project_dir), data_dir=server.data_dir, env=server.env())
    assert time.monotonic() - start >= 0.2 + 0.4  # backoff 0.2 s, then doubled
    assert counter.read_text().count("x") == 3
    bad = rb("job", "run", "flaky_project/broken", "--environment", "dev", "--cluster", CLUSTER,
             data_dir=server.data_dir, env=server.env(), check=False)
    assert bad.returncode == 7
    rows = {r["job"]: r for r in runs_json(server, "--project", "flaky_project")}
    assert rows["flaky"]["status"] == "succeeded" and rows["flaky"]["attempts"] == 3
    assert rows["broken"]["status"] == "failed" and rows["broken"]["attempts"] == 2
    assert rows["broken"]["exit_code"] == 7
    log = rb("runs", "logs", rows["flaky"]["id"], data_dir=server.data_dir, env=server.env()).stdout
    assert "attempt 2 of 4 in 0.2s (previous exit 1)" in log and "attempt 3 of 4 in 0.4s" in log


def test_concurrency_limit_per_cluster(server: Server, tmp_path: Path) -> None:
    server.cluster("platlimit", CLUSTER_ACCOUNT)
    rb("runs", "limit", "--cluster", "platlimit", "1", data_dir=server.data_dir)
    marks = tmp_path / "marks"
    script = f"echo start $(date +%s.%N) >> {marks}; sleep 2; echo end $(date +%s.%N) >> {marks}"
    procs = [subprocess.Popen([ROLEBRIDGE, "run", "--cluster", "platlimit", "--project", "limits", "--environment",
                               "dev", "--data-dir", str(server.data_dir), "--", "sh", "-c", script],
                              env=server.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    saw_pending = False
    deadline = time.monotonic() + 30
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        with sqlite3.connect(server.data_dir / "rolebridge.db") as db:  # read the store directly: fast polls
            statuses = [r[0] for r in db.execute("SELECT status FROM runs WHERE project = 'limits'")]
        assert statuses.count("running") <= 1
        saw_pending |= "pending" in statuses and "running" in statuses
        time.sleep(0.05)
    assert [p.wait(timeout=5) for p in procs] == [0, 0]
    lines = [line.split() for line in marks.read_text().splitlines()]
    assert [k for k, _ in lines] == ["start", "end", "start", "end"]  # never two at once
    assert saw_pending
    assert "at most 1 concurrent runs" in rb("runs", "limit", "--cluster", "platlimit", data_dir=server.data_dir).stdout


def test_job_outlives_its_token_and_keeps_working(server: Server, walkthrough: dict[str, Any]) -> None:
    """The token file is rewritten while the job runs and a fresh SDK session assumes with the new token.

    Tokens live at least 600 s, so the refresh period is shortened with the hidden
    ROLEBRIDGE_TOKEN_REFRESH_SECONDS seam; the refresh schedule itself is tested with a fixed clock
    in test_projects.py.
    """
    job = ("import os, time, boto3\n"
           "path = os.environ['AWS_WEB_IDENTITY_TOKEN_FILE']\n"
           "first = open(path).read(); time.sleep(1.6); second = open(path).read()\n"
           "print('changed', first != second)\n"
           "print(boto3.Session().client('sts').get_caller_identity()['Arn'])\n")
    out = rb("run", "--cluster", CLUSTER, "--project", PROJECT, "--environment", "dev", "--", PY, "-c", job,
             data_dir=server.data_dir, env=server.env(ROLEBRIDGE_TOKEN_REFRESH_SECONDS="0.5"))
    lines = out.stdout.splitlines()
    assert lines[0] == "changed True"
    assert lines[1].startswith(f"arn:aws:sts::{DATA_ACCOUNT}:assumed-role/cross-account-sample-dev/")


def test_logs_are_bounded_and_followed(server: Server, walkthrough: dict[str, Any]) -> None:
    out = rb("run", "--cluster", CLUSTER, "--project", "logs_project", "--environment", "dev", "--", PY, "-c",
             "import sys; sys.stdout.write('a' * 5000); sys.stdout.flush(); sys.stderr.write('b' * 10)",
             data_dir=server.data_dir, env=server.env(ROLEBRIDGE_RUN_LOG_MAX="1000"))
    assert out.stdout == "a" * 5000  # the terminal sees everything
    row = runs_json(server, "--project", "logs_project")[0]
    log_file = server.data_dir / "runs" / row["id"] / "output.log"
    data = log_file.read_bytes()
    assert data.startswith(b"a" * 1000) and b"[rolebridge: log truncated at 1000 bytes]" in data
    assert len(data) < 1100 and log_file.stat().st_mode & 0o777 == 0o600
    followed = rb("runs", "logs", row["id"], "--follow", data_dir=server.data_dir, env=server.env()).stdout
    assert followed.startswith("a" * 1000) and "truncated" in followed


def test_detached_run_through_the_api_and_follow(server: Server, walkthrough: dict[str, Any]) -> None:
    rid = rb("job", "run", f"{PROJECT}/cross-account", "--environment", "dev", "--cluster", CLUSTER, "--detach",
             data_dir=server.data_dir, env=server.env()).stdout.strip()
    assert re.fullmatch(UUID, rid)
    followed = rb("runs", "logs", rid, "--follow", data_dir=server.data_dir, env=server.env()).stdout
    assert followed.startswith(f"arn:aws:sts::{DATA_ACCOUNT}:assumed-role/cross-account-sample-dev/")
    row = _wait_status(server, rid, {"succeeded", "failed"})
    assert row["status"] == "succeeded" and row["assume"]["assumed_arn"] == followed.strip()


def test_api_auth_and_account_isolation(server: Server, walkthrough: dict[str, Any]) -> None:
    import httpx

    from rolebridge.platform.api_auth import derive_token

    keys = server.account(CLUSTER_ACCOUNT)
    other = server.account("330000000009")
    base = server.url + "/api"
    with httpx.Client(verify=server.ca_bundle) as http:
        assert http.get(base + "/openapi.json").json()["info"]["title"] == "rolebridge platform API"
        none = http.get(base + "/runs")
        assert none.status_code == 401 and none.json()["code"] == "MissingAuthenticationToken"
        forged = derive_token(keys["access_key_id"], "x" * 40)
        bad = http.get(base + "/runs", headers={"Authorization": f"Bearer {forged}"})
        assert bad.status_code == 401 and bad.json()["code"] == "SignatureDoesNotMatch"
        expired = derive_token(keys["access_key_id"], keys["secret_access_key"], ttl=-5)
        assert http.get(base + "/runs", headers={"Authorization": f"Bearer {expired}"}).json()["code"] == "ExpiredToken"
        mine = {"Authorization": "Bearer " + derive_token(keys["access_key_id"], keys["secret_access_key"])}
        theirs = {"Authorization": "Bearer " + derive_token(other["access_key_id"], other["secret_access_key"])}
        runs = http.get(base + "/runs", headers=mine, params={"project": PROJECT}).json()
        assert runs and all(r["account_id"] == CLUSTER_ACCOUNT for r in runs)
        assert http.get(base + "/runs", headers=theirs, params={"project": PROJECT}).json() == []
        hidden = http.get(base + f"/runs/{runs[0]['id']}", headers=theirs)
        assert hidden.status_code == 404 and hidden.json()["code"] == "NoSuchEntity"
        clusters = http.get(base + "/clusters", headers=mine).json()
        assert CLUSTER in {c["name"] for c in clusters}
        envs = http.get(base + "/environments", headers=mine).json()
        assert {"name": "dev", "cluster": CLUSTER} in [{"name": e["name"], "cluster": e["cluster"]} for e in envs]
        project = http.get(base + f"/projects/{PROJECT}", headers=mine).json()
        assert {j["name"] for j in project["jobs"]} >= {"cross-account", "same-account"}
        logs = http.get(base + f"/runs/{runs[0]['id']}/logs", headers=mine).json()
        assert logs["next_offset"] == len(logs["data"].encode())


def test_runs_readable_without_server(server: Server, walkthrough: dict[str, Any]) -> None:
    """No server.json in a copy of the store: the CLI reads the database directly."""
    env = {k: v for k, v in server.env().items() if k != "ROLEBRIDGE_DATA_DIR"}
    copy = server.data_dir.parent / "offline-copy"
    subprocess.run(["cp", "-r", str(server.data_dir), str(copy)], check=True)
    (copy / "server.json").unlink()
    rows = json.loads(rb("runs", "list", "--json", "--project", PROJECT, data_dir=copy, env=env).stdout)
    assert any(r["status"] == "succeeded" for r in rows)
    assert os.path.exists(copy / "rolebridge.db")
