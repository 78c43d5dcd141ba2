"""`rolebridge server --workers N`: one listening socket per worker on one port (``SO_REUSEPORT``),
kept when uvicorn replaces a worker; the port still refused when anyone else holds it; and the audit
follower in the server's session (the kernel's autogroup), where its nice value counts.

Live: real servers, the kernel's own view of who holds which socket (/proc), raw TCP connections.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import ROLEBRIDGE, Server, start_server, stop_server


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    kids.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return kids


def _cmdline(pid: int) -> str:
    try:
        return (Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")).decode()
    except OSError:
        return ""


def _sockets(port: int, state: str) -> set[int]:
    """Inodes of this host's TCP sockets on local ``port`` in ``state`` (0A listen, 01 established)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                inodes.add(int(fields[9]))
    return inodes


def _held(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def _workers(srv: Server) -> list[int]:
    """uvicorn's workers (spawned by multiprocessing), not the follower or multiprocessing's resource tracker."""
    return [pid for pid in _children(srv.process.pid) if "spawn_main" in _cmdline(pid)]


def _port(srv: Server) -> int:
    return int(srv.url.rsplit(":", 1)[1])


def _listening_by_worker(srv: Server, expect: int, timeout: float = 30) -> dict[int, set[int]]:
    """{worker pid: listening socket inodes it holds}, once ``expect`` workers run and serve."""
    deadline = time.monotonic() + timeout
    while True:
        listening = _sockets(_port(srv), "0A")
        workers = _workers(srv)
        held = {pid: _held(pid) & listening for pid in workers}
        if (len(workers) == expect and all(held.values())) or time.monotonic() > deadline:
            return held
        time.sleep(0.2)


def test_each_worker_serves_its_own_socket_and_a_replacement_takes_the_dead_ones(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", tmp_path / "home", "--workers", "2")
    try:
        listening = _sockets(_port(srv), "0A")
        assert len(listening) == 2, "one listening socket per worker"
        assert _held(srv.process.pid) & listening == listening, "the parent keeps both (a dead worker's queue waits)"
        held = _listening_by_worker(srv, 2)
        assert sorted(len(s) for s in held.values()) == [1, 1] and set.union(*held.values()) == listening, held

        # the kernel spreads connections over the two sockets: 64 at once, both workers get a share
        conns = [socket.create_connection(("127.0.0.1", _port(srv)), timeout=5) for _ in range(64)]
        try:
            deadline = time.monotonic() + 10
            while True:
                established = _sockets(_port(srv), "01")
                share = {pid: len(_held(pid) & established) for pid in held}
                if sum(share.values()) == 64 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert sum(share.values()) == 64, share
            # binomial(64, 1/2): a share under 12 has odds of ~1e-7; one shared socket gave 64/0 in the bench
            assert min(share.values()) >= 12, share
        finally:
            for c in conns:
                c.close()

        dead, its_socket = next(iter(held.items()))
        os.kill(dead, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while dead in _workers(srv) or len(_workers(srv)) < 2:
            assert time.monotonic() < deadline, "uvicorn did not replace the killed worker"
            time.sleep(0.2)
        after = _listening_by_worker(srv, 2)
        replacement = next(pid for pid in after if pid not in held)
        assert after[replacement] == its_socket, (held, after)
        # uvicorn's rolling restart (SIGHUP: start a new worker, then stop an old one, slot by slot)
        os.kill(srv.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + 60
        while set(_workers(srv)) & set(after) or len(_workers(srv)) < 2:
            assert time.monotonic() < deadline, "the rolling restart did not finish"
            time.sleep(0.2)
        restarted = _listening_by_worker(srv, 2)
        assert sorted(len(s) for s in restarted.values()) == [1, 1], restarted
        assert set.union(*restarted.values()) == listening, (restarted, listening)
        sts = srv.client("sts", **_keys(srv))
        for _ in range(8):
            assert sts.get_caller_identity()["Account"] == "350000000077"
    finally:
        stop_server(srv)


def _keys(srv: Server) -> dict[str, str]:
    keys = srv.account("350000000077")
    return {"aws_access_key_id": keys["access_key_id"], "aws_secret_access_key": keys["secret_access_key"]}


@pytest.mark.parametrize("reuse_port", [False, True])
def test_a_port_held_by_another_socket_is_refused_even_one_sharing_it(tmp_path: Path, reuse_port: bool) -> None:
    """Per-worker sockets use SO_REUSEPORT, which would let two servers share a port unseen; the port
    is first bound without it, so the second server is refused as before."""
    holder = socket.socket()
    if reuse_port:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        out = subprocess.run([ROLEBRIDGE, "server", "--data-dir", str(tmp_path / "data"), "--port", str(port),
                              "--workers", "2"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 1
        assert out.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: Address already in use"), out.stderr
    finally:
        holder.close()


def test_the_audit_follower_shares_the_servers_session_not_its_process_group(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", tmp_path / "home")
    try:
        follower = next(pid for pid in _children(srv.process.pid) if "rolebridge.audit.ingest" in _cmdline(pid))
        # one session = one autogroup: the follower's nice 10 ranks it below the server's threads
        assert os.getsid(follower) == os.getsid(srv.process.pid)
        assert os.getpgid(follower) == follower != os.getpgid(srv.process.pid)  # Ctrl-C reaches the server only
        deadline = time.monotonic() + 10
        while os.getpriority(os.PRIO_PROCESS, follower) != 10:  # it renices itself as it starts
            assert time.monotonic() < deadline
            time.sleep(0.05)
        autogroup = Path(f"/proc/{follower}/autogroup")
        if autogroup.exists():
            assert autogroup.read_text().split()[0] == Path(f"/proc/{srv.process.pid}/autogroup").read_text().split()[0]
    finally:
        stop_server(srv)
