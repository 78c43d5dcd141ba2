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


def _kill_and_wait_for_replacement(srv: Server, dead: int) -> dict[int, set[int]]:
    """SIGKILL worker ``dead``; once uvicorn has replaced it, each worker's listening sockets."""
    os.kill(dead, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while dead in _workers(srv) or len(_workers(srv)) < 2:
        assert time.monotonic() < deadline, "uvicorn did not replace the killed worker"
        time.sleep(0.2)
    return _listening_by_worker(srv, 2)


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
        after = _kill_and_wait_for_replacement(srv, dead)
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


def _cpus(pid: int) -> set[int]:
    """The CPUs every thread of ``pid`` may run on (the union over its threads)."""
    allowed: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            allowed |= os.sched_getaffinity(int(task.name))
        except OSError:
            continue
    return allowed


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="pinning two workers apart needs two CPUs")
def test_pinned_workers_run_on_a_cpu_each_and_a_replacement_takes_its_slots_cpu(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", tmp_path / "home", "--workers", "2", "--pin-workers")
    try:
        held = _listening_by_worker(srv, 2)
        sts = srv.client("sts", **_keys(srv))
        for _ in range(4):  # the workers' own threads (the audit writer among them) exist once they have served
            assert sts.get_caller_identity()["Account"] == "350000000077"
        cpus = {pid: _cpus(pid) for pid in held}
        assert all(len(c) == 1 for c in cpus.values()), cpus
        assert len(set.union(*cpus.values())) == 2, cpus  # one each, not both on one
        assert _cpus(srv.process.pid) == os.sched_getaffinity(0)  # the supervisor itself is not pinned
        by_socket = {frozenset(held[pid]): cpus[pid] for pid in held}
        dead = next(iter(held))
        after = _kill_and_wait_for_replacement(srv, dead)
        deadline = time.monotonic() + 30  # a new worker pins itself once it has started up
        while any(_cpus(pid) != by_socket[frozenset(sockets)] for pid, sockets in after.items()):
            assert time.monotonic() < deadline, ({pid: _cpus(pid) for pid in after}, after, by_socket)
            time.sleep(0.2)
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


def test_workers_0_serves_in_one_process(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", tmp_path / "home", "--workers", "0")
    try:
        assert not _workers(srv) and len(_sockets(_port(srv), "0A")) == 1
        assert srv.client("sts", **_keys(srv)).get_caller_identity()["Account"] == "350000000077"
    finally:
        stop_server(srv)


def _autogroup(pid: int) -> str:
    """The autogroup a process is scheduled in ("/autogroup-912"), or "" where the kernel reports none."""
    try:
        return next(iter(Path(f"/proc/{pid}/autogroup").read_text().split()), "")
    except OSError:
        return ""


def test_the_audit_follower_shares_the_servers_session_not_its_process_group(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", tmp_path / "home")
    try:
        follower = next(pid for pid in _children(srv.process.pid) if "rolebridge.audit.ingest" in _cmdline(pid))
        # one session = one autogroup: the follower's nice 10 ranks it below the server's threads
        assert os.getsid(follower) == os.getsid(srv.process.pid)
        assert os.getpgid(follower) == follower != os.getpgid(srv.process.pid)  # Ctrl-C reaches the server only
        def settled() -> bool:  # it renices itself and ignores SIGTTOU as it starts
            status = Path(f"/proc/{follower}/status").read_text()
            ignored = int(next(x for x in status.splitlines() if x.startswith("SigIgn:")).split()[1], 16)
            # a background group's write to the terminal must not stop it
            return os.getpriority(os.PRIO_PROCESS, follower) == 10 and bool(ignored & (1 << (signal.SIGTTOU - 1)))

        deadline = time.monotonic() + 10
        while not settled():
            assert time.monotonic() < deadline, "the follower is not at nice 10 with SIGTTOU ignored"
            time.sleep(0.05)
        # /proc/<pid>/autogroup is absent or empty where the kernel has no autogroups (CI's has none);
        # where the server is in one, the follower must be in the same
        server_group = _autogroup(srv.process.pid)
        if server_group:
            assert _autogroup(follower) == server_group
    finally:
        stop_server(srv)


# -- uvicorn's supervisor over WorkerSockets, without spawning interpreters ---------------------------------------
#
# The supervisor's flows (start, replace a dead worker, rolling restart, SIGTTIN/SIGTTOU) are uvicorn's own
# methods, run as they are; only what a worker *is* (a spawned interpreter serving HTTPS) is stood in for, by
# overriding the few uvicorn Process methods that touch the child (start, liveness, readiness, termination).
# The live test above covers real workers; this covers the orders of events that are hard to time live.

import itertools  # noqa: E402

from uvicorn import Config  # noqa: E402
from uvicorn.supervisors import multiprocess  # noqa: E402

from rolebridge.http.serving import BoundedProcess, SlottedMultiprocess, WorkerSockets  # noqa: E402

_PIDS = itertools.count(900000)


class _Child:
    """The spawned interpreter's state as uvicorn's Process reads it."""

    def __init__(self) -> None:
        self.exitcode: int | None = None
        self.pid = next(_PIDS)
        self.started = False

    def start(self) -> None:
        self.started = True

    def is_alive(self) -> bool:
        return self.started and self.exitcode is None

    def kill(self) -> None:
        self.exitcode = -9

    def join(self, timeout: float | None = None) -> None:
        pass


class _Worker(BoundedProcess):
    ready = True
    sockets: WorkerSockets

    def __init__(self, config: Config, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets)  # the slot is claimed here, as for a real worker
        self.process = _Child()

    def is_alive(self, timeout: float = 5) -> bool:
        return self.process.is_alive()

    def wait_until_ready(self, timeout: float, should_exit: object = None) -> bool:
        return _Worker.ready

    def terminate(self) -> None:
        slot = _Worker.sockets.slot_of(self)
        others = [w for _, w in _Worker.sockets.holders[slot] if w is not self and w.process.exitcode is None]
        assert others, f"slot {slot} would be left without a worker"
        self.process.exitcode = 0


def _slots(sockets: WorkerSockets, workers: list[_Worker]) -> list[int | None]:
    return [sockets.slot_of(w) for w in workers]


@pytest.fixture
def supervisor(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    saved = {sig: signal.getsignal(sig) for sig in multiprocess.SIGNALS}
    monkeypatch.setattr(multiprocess, "Process", _Worker)
    listeners = [socket.socket() for _ in range(3)]
    sockets = WorkerSockets(listeners)
    _Worker.sockets, _Worker.ready = sockets, True
    sup = SlottedMultiprocess(Config(app="x:y", workers=3), sockets=sockets)
    sup.init_processes()
    yield sup, sockets
    for sig, handler in saved.items():
        signal.signal(sig, handler)
    for s in listeners:
        s.close()


def test_one_worker_per_socket_through_deaths_restarts_and_resizes(supervisor) -> None:  # type: ignore[no-untyped-def]
    sup, sockets = supervisor
    assert _slots(sockets, sup.processes) == [0, 1, 2]

    sup.processes[0].process.kill()  # a worker dies; uvicorn's health loop replaces it
    sup.keep_subprocess_alive()
    assert _slots(sockets, sup.processes) == [0, 1, 2]

    sup.processes[2].process.kill()
    sup.processes[0].process.kill()
    sup.keep_subprocess_alive()
    assert _slots(sockets, sup.processes) == [0, 1, 2]

    before = list(sup.processes)
    sup.restart_all()  # _Worker.terminate asserts no slot is ever left empty on the way
    assert not set(map(id, sup.processes)) & set(map(id, before))
    assert _slots(sockets, sup.processes) == [0, 1, 2]
    sup.restart_all()  # a second one after the first (sequences keep counting)
    assert _slots(sockets, sup.processes) == [0, 1, 2]

    _Worker.ready = False  # a restart whose first new worker never gets ready is abandoned
    kept = list(sup.processes)
    sup.restart_all()
    assert sup.processes == kept and _slots(sockets, sup.processes) == [0, 1, 2]
    _Worker.ready = True
    sup.processes[1].process.kill()  # the abandoned worker's claim does not block the slot's next one
    sup.keep_subprocess_alive()
    assert _slots(sockets, sup.processes) == [0, 1, 2]

    sup.handle_ttou()  # one fewer would leave a socket without a worker; one more would share one
    sup.handle_ttin()
    assert len(sup.processes) == 3 and _slots(sockets, sup.processes) == [0, 1, 2]
    assert all(len([w for _, w in held if w.process.exitcode is None]) == 1 for held in sockets.holders)
