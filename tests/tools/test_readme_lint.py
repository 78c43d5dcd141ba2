"""The README's `rolebridge lint` commands run as written (the account and, for --aws, the IAM endpoint
swapped for the test's own rolebridge server)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

from conftest import ROLEBRIDGE, Server, rb

README = Path(__file__).resolve().parents[2] / "README.md"
ACCOUNT = "350000000002"


def readme_commands(program: str) -> list[list[str]]:
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), re.S)
    lines = [line for block in blocks for line in block.splitlines() if line.startswith(f"rolebridge {program} ")]
    return [shlex.split(line, comments=True) for line in lines]


def test_readme_lint_commands_work(server: Server, tmp_path: Path) -> None:
    commands = readme_commands("lint")
    forms = {("--aws" in c, "--account" in c, "--all" in c, "--role" in c) for c in commands}
    assert len(commands) >= 4 and (True, False, True, False) in forms, commands  # `lint --all --aws` is shown
    server.cluster("readme-lint", "350000000001")
    keys = server.account(ACCOUNT)
    rb("grant", "--cluster", "readme-lint", "--project", "cross_account_sample", "--environment", "dev",
       "--account", ACCOUNT, "--apply", data_dir=server.data_dir)
    (tmp_path / "trust.json").write_text(rb("grant", "--cluster", "readme-lint", "--project", "cross_account_sample",
                                            "--environment", "dev", "--account", ACCOUNT, "--policy-json",
                                            data_dir=server.data_dir).stdout)
    # --aws reaches the local server, never AWS (Server.env points every SDK endpoint at it)
    env = server.env(AWS_ACCESS_KEY_ID=keys["access_key_id"], AWS_SECRET_ACCESS_KEY=keys["secret_access_key"])
    for command in commands:
        args = [ACCOUNT if a == "222222222222" else a for a in command[1:]]
        if "--aws" in args:
            args += ["--endpoint-url", server.url]
        proc = subprocess.run([ROLEBRIDGE, *args, "--json"], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=120)
        assert proc.returncode == 0, f"{shlex.join(command)}:\n{proc.stdout}{proc.stderr}"
        out = json.loads(proc.stdout)
        assert out["errors"] == 0 and out["checked"], (command, out)
        if "--role" in args or "--all" in args:
            assert f"arn:aws:iam::{ACCOUNT}:role/cross-account-sample-dev" in out["checked"], (command, out)
