"""`rolebridge run` through the warm server: the client half of ``control`` (docs/run-latency.md).

``main()`` calls ``run_fast(argv)`` before it builds the Typer app. It handles only a well-formed
`rolebridge run` whose server has a control socket, and imports neither Typer, Rich, SQLAlchemy
nor cryptography: the server records the run, mints the token and makes the preflight; this
process starts the job, pumps its output to the terminal and the run's log, refreshes its token
and records its end. Anything else (``--help``, an unknown or malformed option, a missing required
one, no control socket, another database than the server's) returns None and the full CLI handles
it, so help, errors and behaviour without a server stay exactly the Typer command's.
"""

from __future__ import annotations

import json
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rolebridge.config import resolve_paths
from rolebridge.platform.runner import JobSpec
from rolebridge.platform.supervise import Attempts, LogSink, Supervision, log_max, remove_secrets, run_attempts

VALUE_OPTIONS = {"--cluster": "cluster", "--project": "project", "--environment": "environment",
                 "--aws-role": "aws_role", "--region": "region", "--data-dir": "data_dir",
                 "--database-url": "database_url"}
FLAGS = {"--preflight": True, "--no-preflight": False}


@dataclass
class RunArgs:
    command: list[str] = field(default_factory=list)
    cluster: str | None = None
    project: str | None = None
    environment: str | None = None
    aws_role: str | None = None
    region: str = "us-east-1"
    preflight: bool = True
    data_dir: str | None = None
    database_url: str | None = None


def parse(argv: list[str]) -> RunArgs | None:
    """The arguments after ``run``, parsed as the Typer command does; None for anything it would refuse or
    treat specially (the full CLI then gives its own message). Options stop at the first argument or
    ``--`` (the command's ``allow_interspersed_args=False``); the last of a repeated option wins."""
    args = RunArgs()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            args.command = argv[i + 1:]
            break
        if not arg.startswith("-") or arg == "-":
            args.command = argv[i:]
            break
        name, eq, inline = arg.partition("=")
        if name in FLAGS and not eq:
            args.preflight = FLAGS[name]
            i += 1
            continue
        if name not in VALUE_OPTIONS:
            return None
        if eq:
            value = inline
        elif i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            value = argv[i + 1]
            i += 1
        else:
            return None
        setattr(args, VALUE_OPTIONS[name], value)
        i += 1
    if not args.command or args.cluster is None or args.project is None or args.environment is None:
        return None
    if args.aws_role is not None and not args.aws_role.strip():
        return None  # the full CLI explains the empty --aws-role
    return args


class ControlLost(Exception):
    """The server closed the control connection (it was stopped)."""


class RemoteLedger:
    """``supervise.Ledger`` over the control connection; if the server goes away mid-run, the store
    is opened here and the run is recorded directly (as the in-process path does)."""

    def __init__(self, conn: socket.socket, reader: Any, row: dict[str, Any], paths: tuple[str, str]) -> None:
        self._conn, self._reader, self._row, self._paths = conn, reader, row, paths
        self._lock = threading.Lock()
        self._local: Any = None

    def _call(self, message: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if self._local is None:
                try:
                    self._conn.sendall(json.dumps(message).encode() + b"\n")
                    line = self._reader.readline()
                    if not line:
                        raise ControlLost
                    answer: dict[str, Any] = json.loads(line)
                    if "error" in answer:
                        raise RuntimeError(f"{answer['error']['code']}: {answer['error']['message']}")
                    return answer
                except (OSError, ControlLost):
                    self._local = self._open_local()
            return {"local": self._local}

    def _open_local(self) -> Any:
        from rolebridge.bootstrap import open_services
        from rolebridge.platform import runs

        services = open_services(*self._paths)
        return runs.LocalLedger(services, self._row["id"], runs._mint_for(services, self._row, None))

    def mint(self, now: float) -> str:
        answer = self._call({"op": "mint", "now": now})
        return answer["local"].mint(now) if "local" in answer else str(answer["token"])

    def started(self, pid: int, attempt: int) -> None:
        answer = self._call({"op": "started", "pid": pid, "attempt": attempt})
        if "local" in answer:
            answer["local"].started(pid, attempt)

    def cancel_requested(self) -> bool:
        answer = self._call({"op": "cancel_requested"})
        return bool(answer["local"].cancel_requested() if "local" in answer else answer["cancel"])

    def finish(self, status: str, exit_code: int | None, message: str | None) -> None:
        answer = self._call({"op": "finish", "status": status, "exit_code": exit_code, "message": message})
        if "local" in answer:
            answer["local"].finish(status, exit_code, message)


def _print_error(error: dict[str, Any]) -> None:
    print(f"error: {error['code']}: {error['message']}", file=sys.stderr)
    if error.get("explanation"):
        print(f"  why: {error['explanation']}", file=sys.stderr)


def run_fast(argv: list[str]) -> int | None:
    """Run `rolebridge run ARGV` through the warm server; the exit status, or None to use the full CLI."""
    args = parse(argv)
    if args is None:
        return None
    paths = resolve_paths(args.data_dir, args.database_url)
    path = paths.control_socket
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except OSError:
        conn.close()
        return None
    reader = conn.makefile("rb")
    sup = Supervision(sts_url="", ca_bundle="", echo=True, stdin=None)
    starting = [True]

    def on_signal(_signum: int, _frame: object) -> None:
        sup.stop.set()
        if starting[0]:  # tell the server while it waits for a slot or assumes: EOF means "cancel"
            try:
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        request = {"op": "start", "cluster": args.cluster, "project": args.project,
                   "environment": args.environment, "aws_role": args.aws_role, "region": args.region,
                   "preflight": args.preflight, "command": args.command, "cwd": None,
                   "database_url": paths.database_url}
        try:
            conn.sendall(json.dumps(request).encode() + b"\n")
            line = reader.readline()
        except OSError:
            line = b""
        if not line:
            return 130 if sup.stop.is_set() else None  # the server went away before answering
        answer: dict[str, Any] = json.loads(line)
        starting[0] = False
        if "fallback" in answer:
            return None
        if "error" in answer:
            _print_error(answer["error"])
            return 1
        if "cancelled" in answer:
            return 130
        if "refused" in answer:
            from rolebridge.cli.run import print_refusal

            print_refusal(answer["refused"])
            return 1
        return _supervise(conn, reader, answer["ok"], sup, (str(paths.data_dir), paths.database_url))
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        reader.close()
        conn.close()


def _supervise(conn: socket.socket, reader: Any, ok: dict[str, Any], sup: Supervision,
               paths: tuple[str, str]) -> int:
    secrets = Path(ok["secrets_dir"])
    ledger = RemoteLedger(conn, reader, ok["run"], paths)
    if sup.stop.is_set():  # interrupted while the server prepared the run: the job never starts
        ledger.finish("cancelled", None, "cancelled before it started")
        return 130
    spec = JobSpec(**ok["spec"])
    plan = Attempts(spec=spec, max_attempts=int(ok["run"]["max_attempts"]),
                    retry_backoff=float(ok["run"]["retry_backoff"]), secrets_dir=secrets,
                    token_lifetime=float(ok["token_lifetime"]), clock=time.time)
    sink = LogSink(Path(ok["log_path"]), log_max())
    try:
        return run_attempts(ledger, plan, ok["token"], sink, sup)
    except OSError as exc:  # the job's program is missing or not executable: one line, as the full CLI prints
        ledger.finish("failed", None, f"supervisor error: {exc}")
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except BaseException as exc:
        ledger.finish("failed", None, f"supervisor error: {exc}")
        raise
    finally:
        sink.close()
        remove_secrets(secrets)
