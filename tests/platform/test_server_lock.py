"""One server per data dir: a second `rolebridge server` on a served data dir is refused in one line and
leaves the first one's server.json and control socket alone; the lock is the supervising process's
only (not the audit follower's, not the workers'), so a server killed with SIGKILL blocks nothing."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import ROLEBRIDGE, Server, start_server, stop_server


def _children(pid: int) -> list[int]:
    """Every live descendant of ``pid``."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found += kids
        frontier += kids
    return found


def _holds(pid: int, path: Path) -> bool:
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(fd) == str(path):
                return True
        except OSError:
            continue
    return False


def _second_server(data_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ROLEBRIDGE, "server", "--data-dir", str(data_dir), "--port", "0", *extra],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_second_server_on_a_served_data_dir_is_refused(tmp_path: Path, workers: str) -> None:
    srv: Server = start_server(tmp_path / "data", tmp_path / "home", "--workers", workers)
    try:
        info = (srv.data_dir / "server.json").read_text()
        assert (srv.data_dir / "run.sock").exists()
        second = _second_server(srv.data_dir, "--workers", workers)
        assert second.returncode == 1
        assert second.stderr.count("\n") == 1 and second.stderr.startswith("error: "), second.stderr
        assert f"pid {srv.process.pid}, {srv.url}" in second.stderr and "already serving" in second.stderr
        assert (srv.data_dir / "server.json").read_text() == info  # not rewritten
        assert (srv.data_dir / "run.sock").exists()  # not deleted on the way out
        keys = srv.account("350000000001")
        sts = srv.client("sts", aws_access_key_id=keys["access_key_id"],
                         aws_secret_access_key=keys["secret_access_key"])
        assert sts.get_caller_identity()["Account"] == "350000000001"  # the first one still serves
        lock = srv.data_dir / "server.lock"
        assert _holds(srv.process.pid, lock)
        children = _children(srv.process.pid)
        assert children, "the audit follower (and the workers) run as children"
        assert not [pid for pid in children if _holds(pid, lock)]
    finally:
        stop_server(srv)
    assert not (srv.data_dir / "server.json").exists()


def test_a_killed_server_does_not_block_the_next_start(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", tmp_path / "home")
    follower = _children(srv.process.pid)
    srv.process.kill()  # SIGKILL: no cleanup; its follower notices a moment later
    srv.process.wait()
    assert json.loads((srv.data_dir / "server.json").read_text())["pid"] == srv.process.pid  # left behind
    again = start_server(srv.data_dir, tmp_path / "home")
    try:
        assert again.process.poll() is None
    finally:
        stop_server(again)
        for pid in follower:  # the old follower exits once it sees its parent gone
            assert not _holds(pid, srv.data_dir / "server.lock")
