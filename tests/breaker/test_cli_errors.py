"""The CLI's answer to a broken environment (database URL, data dir, missing program) is one
`error:` line and exit 1, never a Python traceback."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import Server, rb

ROLEBRIDGE = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "rolebridge"
pytestmark = pytest.mark.skipif(not ROLEBRIDGE.exists(), reason="needs the project venv")


def rolebridge(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLEBRIDGE_")}
    env["HOME"] = str(tmp_path)
    return subprocess.run([str(ROLEBRIDGE), *args], capture_output=True, text=True, timeout=120, env=env,
                          cwd=tmp_path)


@pytest.mark.parametrize(("args", "expected"), [
    (("cluster", "list", "--database-url", "nosuchdialect://x"), "error: database: Can't load plugin"),
    (("cluster", "list", "--database-url", "sqlite:////nonexistent-dir/x.db"),
     "error: database: unable to open database file"),
    (("account", "create", "444444444444", "--json", "--data-dir", "/dev/null"), "error: File exists: /dev/null"),
])
def test_environment_errors_are_one_line(tmp_path: Path, args: tuple[str, ...], expected: str) -> None:
    res = rolebridge(*args, tmp_path=tmp_path)
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert res.stderr.startswith(expected), res.stderr


def test_run_of_a_missing_program_is_one_line(server: Server, tmp_path: Path) -> None:
    server.cluster("brk", "676767676767")
    missing = str(tmp_path / "no-such-program")
    res = rb("run", "--cluster", "brk", "--project", "p", "--environment", "dev", "--", missing,
             data_dir=server.data_dir, check=False, env=server.env())
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert f"error: No such file or directory: {missing}" in res.stderr


@pytest.mark.parametrize("command", [("lint", "{f}", "--data-dir", "{d}"), ("policy", "evaluate", "{f}"),
                                     ("account", "guardrail", "put", "444444444444", "g", "{f}", "--data-dir", "{d}"),
                                     ("explain", "arn:aws:iam::444444444444:role/r", "--token", "{f}",
                                      "--trust-policy", "{f}", "--data-dir", "{d}")])
def test_every_file_or_stdin_option_reads_the_same_way(tmp_path: Path, command: tuple[str, ...]) -> None:
    """One reader (cli/options.read_source) behind every "FILE or -" option: a missing file and bytes
    that are not UTF-8 are each one error line, never a traceback, whichever command reads them."""
    bad = tmp_path / "latin1.json"
    bad.write_bytes(b'{"Version": "2012-10-17", "Statement": [{"Sid": "caf\xe9"}]}')
    for path, expected in ((tmp_path / "missing.json", "No such file or directory"), (bad, "is not UTF-8 text")):
        args = [a.format(f=path, d=tmp_path / "data") for a in command]
        res = rolebridge(*args, tmp_path=tmp_path)
        assert res.returncode in (1, 2), (args, res.returncode, res.stderr)
        assert "Traceback" not in res.stderr and res.stderr.count("\n") <= 2, res.stderr
        assert res.stderr.startswith("error: ") and expected in res.stderr, (args, res.stderr)
