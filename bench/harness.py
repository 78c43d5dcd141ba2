"""Process and load-generator plumbing for ``bench/run.py``: start a server, wait, load it, stop it by PID.

Everything talks to 127.0.0.1 only. Every server is a child we started; it is stopped with SIGTERM to
its own PID, and any worker it forked that outlives it is stopped by that worker's PID. Loops are
bounded by deadlines.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"


def pin(cpus: str | None) -> list[str]:
    """``taskset -c CPUS`` prefix, or nothing (unpinned, or no taskset on this machine)."""
    if not cpus or not _has("taskset"):
        return []
    return ["taskset", "-c", cpus]


def _has(cmd: str) -> bool:
    return any(os.access(os.path.join(p, cmd), os.X_OK) for p in os.environ.get("PATH", "").split(os.pathsep))


def port_free(port: int) -> bool:
    with socket.socket() as s:
        # as the servers bind (uvicorn and rolebridge set SO_REUSEADDR): TIME_WAIT left by the previous
        # server on this port does not make it busy
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def wait_port(port: int, deadline_s: float, proc: subprocess.Popen[bytes]) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server pid {proc.pid} exited with {proc.returncode} before listening on {port}")
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {HOST}:{port} after {deadline_s} s")


def wait_answer(port: int, tls: bool, deadline_s: float, proc: subprocess.Popen[bytes]) -> None:
    """Until an HTTP request to / gets any HTTP answer (a 4xx is fine): the app is loaded."""
    import http.client
    import ssl

    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server pid {proc.pid} exited with {proc.returncode}")
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # loopback readiness probe only; wrk does the real calls
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(HOST, port, timeout=5, context=context)
        else:
            conn = http.client.HTTPConnection(HOST, port, timeout=5)
        try:
            conn.request("GET", "/health")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.3)
        finally:
            conn.close()
    raise RuntimeError(f"no HTTP answer on {HOST}:{port} after {deadline_s} s")


def children_of(pid: int) -> list[int]:
    """Direct and indirect children of ``pid`` (from /proc), so forked workers can be measured and stopped."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, todo = [], [pid]
    while todo:
        cur = todo.pop()
        for child, parent in parents.items():
            if parent == cur:
                out.append(child)
                todo.append(child)
    return out


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM: the process's peak resident set size so far, in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


@dataclass
class RunningServer:
    label: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    workers: int = 1
    pids_seen: list[int] = field(default_factory=list)

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: the forked workers, or the process itself for one worker."""
        kids = [p for p in children_of(self.proc.pid) if _is_python(p) and not _is_indexer(p)]
        self.pids_seen = sorted(set(self.pids_seen) | set(kids))
        return kids if self.workers > 1 and kids else [self.proc.pid]

    def indexer_pids(self) -> list[int]:
        """rolebridge's audit follower (``audit/ingest.py``): niced, off the request path, counted apart."""
        return [p for p in children_of(self.proc.pid) if _is_indexer(p)]

    def peak_rss(self) -> dict[str, float | None]:
        workers = [peak_rss_mb(p) for p in self.worker_pids()]
        return {"per_worker_max_mb": max((w for w in workers if w is not None), default=None),
                "workers_mb": workers, "parent_mb": peak_rss_mb(self.proc.pid)}

    def stop(self) -> None:
        kids = children_of(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for pid in kids:
            _stop_pid(pid)


def _is_indexer(pid: int) -> bool:
    try:
        return b"rolebridge.audit.ingest" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _is_python(pid: int) -> bool:
    try:
        return "python" in Path(f"/proc/{pid}/comm").read_text() or "rolebridge" in Path(
            f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def _stop_pid(pid: int) -> None:
    end = time.monotonic() + 10
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def start_server(label: str, argv: list[str], port: int, logs: Path, *, cpus: str | None = None,
                 workers: int = 1, env: dict[str, str] | None = None, settle_s: float = 1.0,
                 cwd: str | None = None, tls: bool = False) -> RunningServer:
    if not port_free(port):
        raise RuntimeError(f"port {port} is busy; stop whatever listens there or pass --port-base")
    log = logs / f"{label}.server.log"
    fh = open(log, "ab")
    proc = subprocess.Popen(pin(cpus) + argv, stdout=fh, stderr=subprocess.STDOUT, cwd=cwd,
                            env={**os.environ, **(env or {})})
    fh.close()
    server = RunningServer(label, proc, port, log, workers)
    try:
        wait_port(port, 60, proc)
        # the parent listens before its workers have imported the app: wait for real answers, one
        # per worker (a worker that is still importing does not accept, so answers come from ready ones)
        for _ in range(workers):
            wait_answer(port, tls, 90, proc)
        time.sleep(settle_s)
    except Exception:
        server.stop()
        raise
    return server


def pin_workers(server: RunningServer, timeout: float = 30) -> None:
    """Put worker i (by pid order) and all its threads on CPU i of this process's CPUs, round robin."""
    cpus = sorted(os.sched_getaffinity(0))
    deadline = time.monotonic() + timeout
    while len(server.worker_pids()) < server.workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.label}: {server.workers} workers expected to pin")
        time.sleep(0.1)
    for i, pid in enumerate(sorted(server.worker_pids())):
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                os.sched_setaffinity(int(task.name), {cpus[i % len(cpus)]})
            except OSError:
                continue


# -- wrk --------------------------------------------------------------------------------------------

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"unparsable wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> dict[str, object]:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    if not (rps and p50 and p99 and total):
        raise ValueError("wrk output not understood:\n" + out)
    return {"rps": float(rps.group(1)), "p50_ms": round(_ms(p50.group(1)), 3),
            "p99_ms": round(_ms(p99.group(1)), 3), "requests": int(total.group(1)),
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": sock.group(1).strip() if sock else ""}


def wrk(url: str, script: Path, conns: int, duration_s: float, *, cpus: str | None, log: Path,
        threads: int = 1) -> dict[str, object]:
    cmd = [*pin(cpus), "wrk", f"-t{threads}", f"-c{conns}", f"-d{duration_s:g}s", "--timeout", "5s", "--latency", "-s", str(script), url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 60)
    with open(log, "a") as fh:
        fh.write(" ".join(cmd) + "\n" + proc.stdout + proc.stderr + "\n")
    result = parse_wrk(proc.stdout)
    result["command"] = " ".join(cmd)
    return result


def lua_script(path: Path, *, body: str, headers: dict[str, str]) -> Path:
    """A wrk script sending one fixed POST; long-bracket strings so the body needs no escaping."""
    lines = ['wrk.method = "POST"', f"wrk.body = [==[{body}]==]"]
    lines += [f'wrk.headers["{k}"] = [==[{v}]==]' for k, v in headers.items()]
    path.write_text("\n".join(lines) + "\n")
    return path
