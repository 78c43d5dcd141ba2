"""The README's job walkthrough as a new user runs it: a job synced from its project directory runs
there, retries show on the console, and the data account's keys exported in the shell neither hide
the cluster account's runs nor break `--detach`; explicit platform keys filter, and say so; `runs
list|show` and `server` say what they mean.

Accounts 340000000001 (the cluster's) and 340000000002 (the data account) belong to this module only.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import ROLEBRIDGE, Server, rb

CLUSTER_ACCOUNT = "340000000001"
DATA_ACCOUNT = "340000000002"
CLUSTER = "newuser"
PROJECT = "new_user_project"
PY = sys.executable
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture(scope="module")
def project(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    server.cluster(CLUSTER, CLUSTER_ACCOUNT)
    server.account(DATA_ACCOUNT)
    directory = tmp_path_factory.mktemp("my-project")
    (directory / "report.py").write_text("import os\nprint('report from', os.getcwd())\n")
    (directory / "flaky.py").write_text(
        "import pathlib, sys\n"
        "mark = pathlib.Path('flaky.mark')\n"
        "if not mark.exists():\n"
        "    mark.write_text('1')\n"
        "    sys.exit(3)\n"
        "print('second time lucky')\n")
    (directory / "rolebridge.yaml").write_text(f"""
project: {PROJECT}
jobs:
  report:
    command: [{PY}, report.py]
  flaky:
    command: [{PY}, flaky.py]
    retries: 2
    retry_backoff: 0
""")
    rb("job", "sync", str(directory), data_dir=server.data_dir)
    return directory


def data_account_shell(server: Server) -> dict[str, str]:
    """The README walkthrough's shell: the data account's admin keys exported for the AWS CLI."""
    keys = server.account(DATA_ACCOUNT)
    return server.env(AWS_ACCESS_KEY_ID=keys["access_key_id"], AWS_SECRET_ACCESS_KEY=keys["secret_access_key"])


def tenant_shell(server: Server, account_id: str) -> dict[str, str]:
    keys = server.account(account_id)
    return server.env(ROLEBRIDGE_ACCESS_KEY_ID=keys["access_key_id"],
                      ROLEBRIDGE_SECRET_ACCESS_KEY=keys["secret_access_key"])


def run_cli(server: Server, *args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`rolebridge ARGS` from directory ``cwd``, as a user in a shell there."""
    return subprocess.run([ROLEBRIDGE, *args, "--data-dir", str(server.data_dir)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def wait_ended(server: Server, run_id: str, env: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        row = json.loads(rb("runs", "show", run_id, "--json", data_dir=server.data_dir, env=env).stdout)
        if row["status"] in ("succeeded", "failed", "cancelled"):
            return row
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not end: {row}")


def test_synced_job_runs_in_its_project_dir_from_the_parent_dir(server: Server, project: Path) -> None:
    out = run_cli(server, "job", "run", f"{PROJECT}/report", "--environment", "dev", "--cluster", CLUSTER,
                  env=server.env(), cwd=project.parent)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"report from {project}\n"


def test_project_dir_option_still_overrides_the_synced_dir(server: Server, project: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-checkout"
    other.mkdir()
    (other / "rolebridge.yaml").write_text((project / "rolebridge.yaml").read_text())
    (other / "report.py").write_text("print('the other checkout')\n")
    try:
        out = run_cli(server, "job", "run", f"{PROJECT}/report", "--environment", "dev", "--cluster", CLUSTER,
                      "--project-dir", str(other / "rolebridge.yaml"), env=server.env(), cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert out.stdout == "the other checkout\n"
    finally:
        rb("job", "sync", str(project), data_dir=server.data_dir)


def test_detached_synced_job_runs_in_its_project_dir(server: Server, project: Path) -> None:
    out = run_cli(server, "job", "run", f"{PROJECT}/report", "--environment", "dev", "--cluster", CLUSTER,
                  "--detach", env=server.env(), cwd=project.parent)
    assert out.returncode == 0, out.stderr
    rid = out.stdout.strip()
    assert wait_ended(server, rid, server.env())["status"] == "succeeded"
    assert rb("runs", "logs", rid, data_dir=server.data_dir, env=server.env()).stdout == f"report from {project}\n"


def test_retry_lines_show_on_the_console(server: Server, project: Path) -> None:
    (project / "flaky.mark").unlink(missing_ok=True)
    out = run_cli(server, "job", "run", f"{PROJECT}/flaky", "--environment", "dev", "--cluster", CLUSTER,
                  env=server.env(), cwd=project.parent)
    assert out.returncode == 0, out.stderr
    assert "[rolebridge] attempt 2 of 3 in 0s (previous exit 3)\n" in out.stderr
    assert out.stdout == "second time lucky\n"


def test_data_account_keys_in_the_shell_do_not_hide_the_cluster_accounts_runs(server: Server, project: Path) -> None:
    shell = data_account_shell(server)
    run_cli(server, "job", "run", f"{PROJECT}/report", "--environment", "dev", "--cluster", CLUSTER,
            env=shell, cwd=project.parent)
    listed = rb("runs", "list", "--project", PROJECT, data_dir=server.data_dir, env=shell)
    assert f"/{PROJECT}/report" not in listed.stdout and f"{PROJECT}/report" in listed.stdout
    rows = json.loads(rb("runs", "list", "--json", "--project", PROJECT, data_dir=server.data_dir, env=shell).stdout)
    assert rows and {r["account_id"] for r in rows} == {CLUSTER_ACCOUNT}
    shown = rb("runs", "show", rows[0]["id"], data_dir=server.data_dir, env=shell)
    assert f"run {rows[0]['id']}" in shown.stdout
    assert rb("runs", "logs", rows[0]["id"], data_dir=server.data_dir, env=shell).stdout.startswith("report from")


def test_tenant_keys_filter_and_say_so(server: Server, project: Path) -> None:
    rb("job", "run", f"{PROJECT}/report", "--environment", "dev", "--cluster", CLUSTER, data_dir=server.data_dir,
       env=server.env())
    run_id = json.loads(rb("runs", "list", "--json", "--project", PROJECT, data_dir=server.data_dir,
                           env=server.env()).stdout)[0]["id"]
    tenant = tenant_shell(server, DATA_ACCOUNT)
    listed = rb("runs", "list", "--project", PROJECT, data_dir=server.data_dir, env=tenant)
    assert listed.stdout == "" and "no runs" in listed.stderr  # no header over nothing
    assert f"account {DATA_ACCOUNT} only" in listed.stderr and "ROLEBRIDGE_ACCESS_KEY_ID" in listed.stderr
    shown = rb("runs", "show", run_id, data_dir=server.data_dir, env=tenant, check=False)
    assert shown.returncode == 1 and "Traceback" not in shown.stderr
    assert "does not exist" not in shown.stderr
    assert f"account {CLUSTER_ACCOUNT}" in shown.stderr and f"account {DATA_ACCOUNT}" in shown.stderr
    assert "ROLEBRIDGE_ACCESS_KEY_ID" in shown.stderr
    scoped = rb("runs", "show", run_id, "--account", DATA_ACCOUNT, data_dir=server.data_dir, env=server.env(),
                check=False)
    assert scoped.returncode == 1 and f"--account {CLUSTER_ACCOUNT}" in scoped.stderr
    mine = rb("runs", "list", "--json", "--project", PROJECT, data_dir=server.data_dir,
              env=tenant_shell(server, CLUSTER_ACCOUNT))
    assert run_id in {r["id"] for r in json.loads(mine.stdout)}
    # --account narrows too, and says so (on stderr: the JSON on stdout stays parseable)
    by_flag = rb("runs", "list", "--json", "--account", CLUSTER_ACCOUNT, data_dir=server.data_dir,
                 env=server.env())
    assert run_id in {r["id"] for r in json.loads(by_flag.stdout)}
    assert f"account {CLUSTER_ACCOUNT} only (--account {CLUSTER_ACCOUNT})" in by_flag.stderr
    assert "leave out --account" in by_flag.stderr


def test_detach_with_the_data_accounts_keys_exported_works_like_foreground(server: Server, project: Path) -> None:
    shell = data_account_shell(server)
    out = run_cli(server, "job", "run", f"{PROJECT}/report", "--environment", "dev", "--cluster", CLUSTER,
                  "--detach", env=shell, cwd=project.parent)
    assert out.returncode == 0, out.stderr
    assert re.fullmatch(UUID, out.stdout.strip())
    assert wait_ended(server, out.stdout.strip(), shell)["status"] == "succeeded"
    # explicit platform keys of another account: a clear refusal naming both accounts
    refused = run_cli(server, "job", "run", f"{PROJECT}/report", "--environment", "dev", "--cluster", CLUSTER,
                      "--detach", env=tenant_shell(server, DATA_ACCOUNT), cwd=project.parent)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert CLUSTER_ACCOUNT in refused.stderr and DATA_ACCOUNT in refused.stderr


def test_runs_list_header_refusal_cause_and_show_without_exit_code(server: Server, project: Path) -> None:
    bad = rb("run", "--cluster", CLUSTER, "--project", PROJECT, "--environment", "dev", "--aws-role",
             "no-such-role-here", "--", "true", data_dir=server.data_dir, env=server.env(), check=False)
    assert bad.returncode == 1
    listed = rb("runs", "list", "--project", PROJECT, data_dir=server.data_dir, env=server.env()).stdout.splitlines()
    assert listed[0].split() == ["ID", "STATUS", "JOB", "ENV", "ACCOUNT", "SERVICE", "ACCOUNT", "ROLE", "BECAME",
                                 "EXIT"]
    status_at = listed[0].index("STATUS")  # columns aligned under the header
    assert all(line[status_at:].split()[0] in ("succeeded", "failed") for line in listed[1:]), listed
    refused = next(line for line in listed if "AccessDenied" in line)
    assert "AccessDenied (role-missing)" in refused
    run_id = refused.split()[0]
    shown = rb("runs", "show", run_id, data_dir=server.data_dir, env=server.env()).stdout
    assert "None" not in shown
    assert re.search(r"exit code\s+-\n", shown), shown


def test_port_in_use_names_host_and_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run([ROLEBRIDGE, "server", "--data-dir", str(tmp_path / "data"), "--port", str(port)],
                             capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert out.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: Address already in use")
    assert out.stderr.count("\n") == 1
