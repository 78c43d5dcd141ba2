"""The warm server's control socket: `rolebridge run` hands the store-side work of a run to it.

Starting a run needs the store (SQLAlchemy, ~0.5 s to import), the cluster's signing key
(cryptography) and an HTTPS client for the preflight: all already loaded in a running server. So
the server listens on ``DATA_DIR/run.sock`` (a Unix socket, mode 0600 in the 0700 data dir, peers
checked to be the same user: whoever can reach it can already read the store and the keys), and
`rolebridge run` (``fastrun``) sends it the request as one JSON line. The server records the run,
waits for a slot, mints the first token, makes the preflight assume on a kept-alive connection and
answers with the token, or with the refusal (recorded and explained). The client then starts and
supervises the job itself, so the job stays the child of the user's command (terminal, cwd,
environment, exit status); it asks the server for fresh tokens, for cancel requests, and records
the job's start and end through the same connection. A client that disconnects without ``finish``
(killed) has its run ended ``failed``, its job killed and its token deleted, right away.

Protocol (one JSON object per line, every request answered):
``start`` -> ``{"ok": {...}}`` | ``{"refused": run}`` | ``{"error": {...}}`` | ``{"cancelled": why}`` |
``{"fallback": why}``;
then ``mint``, ``started``, ``cancel_requested``, ``finish`` (the last one ends the session).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import struct
import threading
from typing import Any

from rolebridge import errors
from rolebridge.platform import preflight as pf
from rolebridge.platform import runs
from rolebridge.platform.clusters import get_cluster
from rolebridge.platform.projects import choose_role, get_project
from rolebridge.platform.roles import check_environment, check_project
from rolebridge.services import Services
from rolebridge.store.schema import Run

MAX_LINE = 1 << 20
# AF_UNIX paths are limited to 108 bytes (sun_path); a data dir deeper than that gets no control socket
# and `rolebridge run` takes its in-process path instead.
MAX_SOCKET_PATH = 100


def peer_credentials(conn: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end (Linux SO_PEERCRED)."""
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return pid, uid, gid


def _error(exc: errors.AWSError) -> dict[str, Any]:
    return {"error": {"code": exc.code, "message": exc.message,
                      "explanation": None if exc.explanation is None else str(exc.explanation)}}


class _Session:
    """One `rolebridge run` on the other end of a connection."""

    def __init__(self, server: ControlServer, conn: socket.socket) -> None:
        self.server, self.services, self.conn = server, server.services, conn
        self.reader = conn.makefile("rb")
        self.run_id: str | None = None
        self.ledger: runs.LocalLedger | None = None
        self.finished = False
        self.job_started = False
        self.peer_pid = 0

    def send(self, message: dict[str, Any]) -> None:
        self.conn.sendall(json.dumps(message).encode() + b"\n")

    def receive(self) -> dict[str, Any] | None:
        line = self.reader.readline(MAX_LINE)
        if not line:
            return None
        message = json.loads(line)
        if not isinstance(message, dict):
            raise ValueError("a control message is a JSON object")
        return message

    def peer_gone(self) -> bool:
        """True once the client has closed its end (checked while it waits for a slot)."""
        if self.server.closing.is_set():
            return True
        try:
            self.conn.setblocking(False)
            try:
                return self.conn.recv(1, socket.MSG_PEEK) == b""
            finally:
                self.conn.setblocking(True)
        except BlockingIOError:
            return False
        except OSError:
            return True

    def serve(self) -> None:
        pid, uid, _gid = peer_credentials(self.conn)
        if uid != os.geteuid():
            self.send({"error": {"code": "AccessDenied", "message": "The control socket serves its own user only.",
                                 "explanation": None}})
            return
        self.peer_pid = pid
        first = self.receive()
        if first is None or first.get("op") != "start":
            return
        try:
            answer = self.start(first)
        except errors.AWSError as exc:
            self._fail(f"supervisor error: {exc}")
            answer = _error(exc)
        except Exception as exc:
            self._fail(f"supervisor error: {exc}")
            raise
        self.send(answer)
        if "ok" not in answer:
            self.finished = True
            return
        while (message := self.receive()) is not None:
            self.send(self.handle(message))
            if message.get("op") == "finish":
                self.finished = True
                return

    def start(self, msg: dict[str, Any]) -> dict[str, Any]:
        services = self.services
        wanted = msg.get("database_url")
        if wanted and wanted != services.store.paths.database_url:
            return {"fallback": "the run names another database than the server's"}
        aws_role = msg.get("aws_role")
        if aws_role is not None and not str(aws_role).strip():
            raise errors.ValidationError("--aws-role is empty: give a role name, a role ARN, or leave it out.")
        project, environment = str(msg["project"]), str(msg["environment"])
        check_project(project)
        check_environment(environment)
        try:  # a registered project's default aws_role applies to ad-hoc runs too (as in cli/run.py)
            default = get_project(services, project).aws_role
        except errors.NoSuchEntity:
            default = None
        role = choose_role(aws_role, None, default, environment=environment, project=project)
        req = runs.RunRequest(cluster=str(msg["cluster"]), project=project, environment=environment,
                              command=[str(a) for a in msg["command"]], aws_role=role,
                              region=str(msg.get("region") or "us-east-1"), preflight=bool(msg.get("preflight", True)),
                              cwd=msg.get("cwd"))
        row = runs.create_run(services, req)
        self.run_id = row["id"]
        self.ledger = runs.LocalLedger(services, row["id"], runs._mint_for(services, row, None))
        info = get_cluster(services, req.cluster)
        if not runs.acquire_slot(services, row["id"], req.cluster, self.peer_gone, supervisor_pid=self.peer_pid):
            return {"cancelled": "cancelled while waiting for a slot"}
        sup = runs.Supervision(sts_url=self.server.sts_url, ca_bundle=self.server.ca_bundle)
        sink = runs.LogSink(runs.run_dir(services, row["id"]) / runs.LOG_NAME, runs.log_max())
        try:
            first = runs.first_assume(services, row, req, sup, sink, sts=self.server.sts)
        finally:
            sink.close()
        if first.outcome is not None and not first.outcome.ok:
            return {"refused": runs.get_run(services, row["id"])}
        return {"ok": {
            "run": row, "token": first.token, "token_lifetime": info.token_lifetime,
            "secrets_dir": str(runs.secrets_dir(services, row["id"])),
            "log_path": str(runs.run_dir(services, row["id"]) / runs.LOG_NAME),
            "spec": dataclasses.asdict(runs.job_spec(row, req, sup)),
        }}

    def handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        ledger, op = self.ledger, msg.get("op")
        assert ledger is not None
        try:
            if op == "mint":
                return {"token": ledger.mint(float(msg["now"]))}
            if op == "started":
                ledger.started(int(msg["pid"]), int(msg["attempt"]))
                self.job_started = True
                return {}
            if op == "cancel_requested":
                return {"cancel": ledger.cancel_requested()}
            if op == "finish":
                code = msg.get("exit_code")
                ledger.finish(str(msg["status"]), None if code is None else int(code), msg.get("message"))
                return {}
        except errors.AWSError as exc:
            return _error(exc)
        return _error(errors.ValidationError(f"unknown control operation {op!r}"))

    def _fail(self, message: str) -> None:
        if self.run_id is None:
            return
        with contextlib.suppress(Exception):
            if runs.get_run(self.services, self.run_id)["status"] not in runs.TERMINAL:
                runs._finish(self.services, self.run_id, "failed", None, message)

    def abandoned(self) -> None:
        """The client went away mid-run: end the run, kill its job, delete its token (as ``reap_orphans``)."""
        if self.finished or self.run_id is None or self.server.closing.is_set():
            return
        with self.services.store.read() as s:
            row = s.get(Run, self.run_id)
            if row is None or row.status in runs.TERMINAL:
                return
        if not self.job_started:  # interrupted (or killed) before its job started: nothing ran
            runs._abandon(self.services, row, "cancelled", "cancelled before it started (its supervisor went away)")
            return
        status = "cancelled" if row.cancel_requested else "failed"
        runs._abandon(self.services, row, status, f"its supervisor (pid {self.peer_pid}) exited")


class ControlServer:
    """Accepts `rolebridge run` clients on ``DATA_DIR/run.sock``; one thread per connection."""

    def __init__(self, services: Services, *, sts_url: str, ca_bundle: str) -> None:
        self.services, self.sts_url, self.ca_bundle = services, sts_url, ca_bundle
        self.path = services.store.paths.control_socket
        self.sts = pf.StsClient(sts_url, ca_bundle)
        self.closing = threading.Event()
        self._sock: socket.socket | None = None
        self._inode: int | None = None

    def start(self) -> bool:
        """Listen; False (and no socket) when the data dir's path is too long for AF_UNIX."""
        if len(os.fsencode(self.path)) > MAX_SOCKET_PATH:
            return False
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.path.unlink(missing_ok=True)  # a socket left by a crashed server (server.json is rewritten too)
        old = os.umask(0o177)
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old)
        sock.listen(64)
        self._inode = self.path.stat().st_ino
        self._sock = sock
        threading.Thread(target=self._accept, name="run-control", daemon=True).start()
        return True

    def _accept(self) -> None:
        assert self._sock is not None
        while not self.closing.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name="run-control-session", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        session = _Session(self, conn)
        try:
            session.serve()
        except (OSError, ValueError, KeyError, TypeError):
            pass
        finally:
            with contextlib.suppress(Exception):
                session.abandoned()
            with contextlib.suppress(OSError):
                session.reader.close()
                conn.close()

    def close(self) -> None:
        self.closing.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
        self.sts.close()
        with contextlib.suppress(OSError):  # only our own: a newer server may have bound the path since
            if self._inode is not None and self.path.stat().st_ino == self._inode:
                self.path.unlink()


def start_control(services: Services, *, sts_url: str, ca_bundle: str) -> ControlServer:
    """Start the control socket for `rolebridge run` (see the module docstring)."""
    server = ControlServer(services, sts_url=sts_url, ca_bundle=ca_bundle)
    server.start()
    return server
