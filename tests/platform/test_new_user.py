"""The README's job walkthrough as a new user runs it: a job synced from its project directory runs
there, and retries show on the console.

Accounts 340000000001 (the cluster's) and 340000000002 (the data account) belong to this module only.
"""

from __future__ import annotations

import json
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
