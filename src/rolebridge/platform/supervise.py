"""The supervisor loop of a run: attempts, output pumping, cancellation, the token file.

Kept free of the store (no SQLAlchemy, no crypto): everything a supervisor needs to record goes
through a ``Ledger``. ``runs.LocalLedger`` writes the store directly (`job run`, the server's
threads, Airflow); ``fastrun.RemoteLedger`` asks the warm server over its control socket, so that
`rolebridge run` can start a job without importing the store at all (docs/run-latency.md).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from rolebridge.platform.runner import JobSpec, RunningJob, TokenFile, make_workdir, start_job

POLL = 0.1
CANCEL_CHECK_EVERY = 0.25


class Ledger(Protocol):
    """Where a supervisor reads and writes the run's record, and gets fresh tokens."""

    def mint(self, now: float) -> str: ...

    def started(self, pid: int, attempt: int) -> None: ...

    def cancel_requested(self) -> bool: ...

    def finish(self, status: str, exit_code: int | None, message: str | None) -> None: ...


@dataclass
class Supervision:
    """How ``execute`` talks to its caller: terminal echo, a local stop flag, and the server URL."""

    sts_url: str
    ca_bundle: str
    echo: bool = False
    stop: threading.Event = field(default_factory=threading.Event)
    stdin: int | None = subprocess.DEVNULL
    on_refused: Callable[[dict[str, Any]], None] | None = None
    token_lifetime: int | None = None


DEFAULT_LOG_MAX = 10 * 1024 * 1024


def log_max() -> int:
    """The cap of a run's log, from the environment of the process supervising it."""
    return int(os.environ.get("ROLEBRIDGE_RUN_LOG_MAX", DEFAULT_LOG_MAX))


class LogSink:
    """The run's log file, capped; ``tee`` streams also get every chunk (the user's terminal)."""

    def __init__(self, path: Path, limit: int) -> None:
        self._fh = open(path, "ab", buffering=0)
        self._limit = limit
        self._written = path.stat().st_size
        self._truncated = False
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self._lock:
            room = self._limit - self._written
            if room > 0:
                chunk = data[:room]
                self._fh.write(chunk)
                self._written += len(chunk)
            if len(data) > max(room, 0) and not self._truncated:
                self._truncated = True
                self._fh.write(f"\n[rolebridge: log truncated at {self._limit} bytes]\n".encode())

    def note(self, text: str) -> None:
        self.write(f"[rolebridge] {text}\n".encode())

    def close(self) -> None:
        self._fh.close()


def pump(streams: Sequence[tuple[IO[bytes], IO[bytes] | None]], sink: LogSink) -> None:
    """Copy the job's output streams to the log (and each to its tee) until all are closed.

    One thread reads every stream, so the log keeps the order in which output arrived: when several
    streams are ready at once they are read in the order given (stdout before stderr), where two
    threads would race for the log.
    """
    tees: dict[int, IO[bytes] | None] = {}
    with selectors.DefaultSelector() as selector:
        for stream, tee in streams:
            selector.register(stream, selectors.EVENT_READ)
            tees[stream.fileno()] = tee
        order = {stream.fileno(): i for i, (stream, _) in enumerate(streams)}
        while selector.get_map():
            ready = sorted((key.fileobj for key, _ in selector.select()), key=lambda f: order[f.fileno()])
            for stream in ready:
                assert not isinstance(stream, int)
                fd = stream.fileno()
                chunk = os.read(fd, 65536)
                if not chunk:
                    selector.unregister(stream)
                    stream.close()
                    continue
                sink.write(chunk)
                tee = tees[fd]
                if tee is not None:
                    try:
                        tee.write(chunk)
                        tee.flush()
                    except (OSError, ValueError):
                        tees[fd] = None


def announce(sink: LogSink, sup: Supervision, text: str) -> None:
    """A supervisor's own line (``[rolebridge] ...``): in the run's log, and on the terminal when the
    job's output is echoed there, so a retry or a cancel is seen where the job's output is."""
    sink.note(text)
    if sup.echo:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(f"[rolebridge] {text}\n")
            sys.stderr.flush()


def interruptible_sleep(ledger: Ledger, sup: Supervision, seconds: float) -> bool:
    """Sleep; True if a cancel came in meanwhile."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if sup.stop.is_set() or ledger.cancel_requested():
            return True
        time.sleep(min(POLL, max(0.0, deadline - time.monotonic())))
    return sup.stop.is_set() or ledger.cancel_requested()


@dataclass
class Attempts:
    """What ``run_attempts`` needs beyond the ledger: the job, its retries and where its token lives."""

    spec: JobSpec
    max_attempts: int
    retry_backoff: float
    secrets_dir: Path
    token_lifetime: float
    clock: Callable[[], float]


def run_attempts(ledger: Ledger, plan: Attempts, first_token: str | None, sink: LogSink, sup: Supervision) -> int:
    """Start the job (again, with backoff, on failure) until it succeeds, fails for good or is cancelled."""
    attempts, backoff = plan.max_attempts, float(plan.retry_backoff)
    code = 1
    token = first_token
    for attempt in range(1, attempts + 1):
        if attempt > 1:
            delay = backoff * (2 ** (attempt - 2))
            announce(sink, sup, f"attempt {attempt} of {attempts} in {delay:g}s (previous exit {code})")
            if interruptible_sleep(ledger, sup, delay):
                ledger.finish("cancelled", None, "cancelled between attempts")
                return 130
        workdir = make_workdir(plan.secrets_dir)
        tf = TokenFile(workdir, ledger.mint, plan.token_lifetime, clock=plan.clock)
        tf.write(token)
        token = None
        job = start_job(plan.spec, tf, workdir, stdin=sup.stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        ledger.started(job.process.pid, attempt)
        cancelled = watch(ledger, job, sink, sup)
        raw = job.process.returncode
        code = raw if raw >= 0 else 128 - raw
        if cancelled:
            ledger.finish("cancelled", code, "cancelled")
            return code if code else 130
        if code == 0:
            ledger.finish("succeeded", 0, None)
            return 0
    ledger.finish("failed", code, f"exit {code} after {attempts} attempt(s)")
    return code


def watch(ledger: Ledger, job: RunningJob, sink: LogSink, sup: Supervision) -> bool:
    """Pump output until the job exits; True when it was cancelled (then it is killed and cleaned)."""
    assert job.process.stdout is not None and job.process.stderr is not None
    tees = (sys.stdout.buffer, sys.stderr.buffer) if sup.echo else (None, None)
    streams = list(zip((job.process.stdout, job.process.stderr), tees, strict=True))
    pumping = threading.Thread(target=pump, args=(streams, sink), daemon=True)
    pumping.start()
    cancelled = False
    next_check = time.monotonic() + CANCEL_CHECK_EVERY  # a cancel before the start was checked already
    try:
        while job.poll() is None:
            if sup.stop.is_set():
                cancelled = True
            elif time.monotonic() >= next_check:
                next_check = time.monotonic() + CANCEL_CHECK_EVERY
                cancelled = ledger.cancel_requested()
            if cancelled:
                announce(sink, sup, "cancel requested: stopping the job")
                job.kill()
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                job.wait(timeout=0.05)
    finally:
        if job.poll() is None:
            job.kill()
        job.cleanup()
        pumping.join(timeout=5)
    return cancelled


def remove_secrets(secrets_dir: Path) -> None:
    shutil.rmtree(secrets_dir, ignore_errors=True)


@contextlib.contextmanager
def signals_cancel(sup: Supervision) -> Iterator[None]:
    """In the foreground, SIGINT/SIGTERM to us cancel the run (no orphan, no token left behind)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(_signum: int, _frame: object) -> None:
        sup.stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
