"""uvicorn's Server with the TLS handshake bounded, in the server process and in every worker.

Why: the read deadlines of ``http/protocol.py`` start once a connection's TLS handshake is done,
because only then does the HTTP protocol exist. Before that, asyncio's default applies: 60 s. A
client that opened a TCP connection and sent nothing, or half a ClientHello, was held that long,
and ~20,000 such sockets (the descriptor limit) locked every other client out (seen by the
breaker). uvicorn offers no handshake timeout, so ``startup`` here opens the listening sockets as
uvicorn does (``loop.create_server`` on the given sockets) with ``ssl_handshake_timeout`` set to the
header deadline: a connection has that long to finish its handshake, then that long for its
request headers.

``--workers N``: uvicorn's supervisor builds each worker's Server itself (``multiprocess.Process``
makes a plain ``uvicorn.Server``). ``use_in_workers`` points that one name at ``BoundedProcess`` in
the parent, so the workers it spawns build this Server instead; everything else (signals, health
checks, restarts, shutdown) stays uvicorn's.

Even sharing: one listening socket shared by every worker is taken by whichever worker wakes first
(libuv accepts every pending connection when it wakes), and wrk's 64 connections split about 45/19
(once 64/0), which left one worker queueing while the other had time. ``WorkerSockets`` is one
socket per worker, all bound to the port with ``SO_REUSEPORT``, so the kernel spreads connections
over them by address hash; each ``BoundedProcess`` serves one of them, and ``SlottedMultiprocess``
keeps one worker per socket through deaths and rolling restarts. The parent keeps every socket
open, so a worker that dies leaves its connections queued for its replacement, not reset (the
price: while a worker is replaced, its share of new connections waits instead of going to another).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import os
import socket
import sys
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import multiprocess

from rolebridge.http.protocol import HEADER_TIMEOUT

log = logging.getLogger("rolebridge.http")

HANDSHAKE_TIMEOUT = HEADER_TIMEOUT


class BoundedServer(uvicorn.Server):  # type: ignore[misc]
    """uvicorn's Server whose listening sockets give a TLS handshake ``HANDSHAKE_TIMEOUT`` at most."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        if sockets is None:  # rolebridge always passes its own bound socket; keep uvicorn's path otherwise
            await super().startup(sockets)
            return
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            sys.exit(STARTUP_FAILURE)
        config = self.config

        def create_protocol(_loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg, no-any-return]
                config=config, server_state=self.server_state, app_state=self.lifespan.state, _loop=_loop)

        loop = asyncio.get_running_loop()
        handshake = HANDSHAKE_TIMEOUT if config.ssl is not None else None
        self.servers = [await loop.create_server(create_protocol, sock=sock, ssl=config.ssl, backlog=config.backlog,
                                                 ssl_handshake_timeout=handshake)
                        for sock in sockets]
        self.started = True


class WorkerSockets(list[socket.socket]):
    """One listening socket per worker slot (``SO_REUSEPORT``, one port), and which worker serves each.

    Passed to uvicorn's supervisor (``SlottedMultiprocess``) as its socket list; each
    ``BoundedProcess`` it builds takes one slot (``claim``). A worker uvicorn does not build as a
    ``BoundedProcess`` serves every socket: still correct, only not evenly shared. A slot without a
    worker queues its share of connections until one comes, so the supervisor keeps exactly one
    worker per slot: a replacement for a dead worker takes its slot, a rolling restart gives each new
    worker the slot of the one it replaces, and the worker count does not change while serving.
    """

    def __init__(self, sockets: list[socket.socket]) -> None:
        super().__init__(sockets)
        self.holders: list[list[tuple[int, Any]]] = [[] for _ in sockets]  # (sequence, worker) per slot
        self._sequence = itertools.count()
        self._retiring: list[Any] | None = None  # a rolling restart's old workers, in the order it retires them
        self._restart_began = 0

    def claim(self, worker: Any) -> int:
        """The slot (index of the socket) ``worker`` (about to be started) serves. During a rolling restart: the slot of
        the first old worker not yet given a successor. Otherwise: the slot with the fewest workers
        that have not exited (the lowest on a tie), which is an empty slot when one is empty."""
        for held in self.holders:
            held[:] = [(n, w) for n, w in held if _not_exited(w)]
        slot = self._successor_slot()
        if slot is None:
            slot = min(range(len(self)), key=lambda i: (len(self.holders[i]), i))
        self.holders[slot].append((next(self._sequence), worker))
        return slot

    def begin_restart(self, old_workers: list[Any]) -> None:
        self._retiring, self._restart_began = list(old_workers), next(self._sequence)

    def end_restart(self) -> None:
        self._retiring = None

    def slot_of(self, worker: Any) -> int | None:
        return next((i for i, held in enumerate(self.holders) if any(w is worker for _, w in held)), None)

    def _successor_slot(self) -> int | None:
        for old in self._retiring or ():
            slot = self.slot_of(old)
            if slot is not None and not any(n > self._restart_began for n, _ in self.holders[slot]):
                return slot
        return None


def _not_exited(worker: Any) -> bool:
    process = getattr(worker, "process", None)  # None: its construction failed after the claim
    return process is not None and process.exitcode is None


class SlottedMultiprocess(multiprocess.Multiprocess):  # type: ignore[misc]
    """uvicorn's supervisor, keeping one worker per ``WorkerSockets`` slot: its rolling restart
    (SIGHUP) tells the sockets which worker each new one replaces, and SIGTTIN/SIGTTOU (one worker
    more or fewer) are refused while the workers have a socket each, since a socket left without a
    worker would queue its connections (change ``--workers`` by restarting the server)."""

    def restart_all(self) -> None:
        slotted = isinstance(self.sockets, WorkerSockets)
        if slotted:
            self.sockets.begin_restart(self.processes)
        try:
            super().restart_all()
        finally:
            if slotted:
                self.sockets.end_restart()

    def handle_ttin(self) -> None:
        if isinstance(self.sockets, WorkerSockets):
            log.warning("SIGTTIN ignored: the workers have one socket each; restart with another --workers")
            return
        super().handle_ttin()

    def handle_ttou(self) -> None:
        if isinstance(self.sockets, WorkerSockets):
            log.warning("SIGTTOU ignored: the workers have one socket each; restart with another --workers")
            return
        super().handle_ttou()


# ``--pin-workers``: the CPUs the parent may use, set by ``use_in_workers`` (None: workers float)
_PIN_CPUS: list[int] | None = None
_unslotted = itertools.count()


class BoundedProcess(multiprocess.Process):  # type: ignore[misc]
    """A ``--workers`` worker whose server is a ``BoundedServer``; given ``WorkerSockets``, it serves
    its own slot's socket. With ``--pin-workers`` it runs on one CPU: slot i on the i-th CPU the
    server may use (round robin), so a replacement takes its predecessor's CPU too. Where the kernel
    refuses per-worker sockets (one shared socket, no slots) workers take CPUs in the order they
    start, and a replacement may share a CPU with another worker."""

    def __init__(self, config: Any, sockets: list[socket.socket]) -> None:
        slot: int | None = None
        if isinstance(sockets, WorkerSockets):
            slot = sockets.claim(self)
            sockets = [sockets[slot]]
        self.cpu: int | None = None  # set before the base class captures ``target`` for the child
        if _PIN_CPUS:
            self.cpu = _PIN_CPUS[(slot if slot is not None else next(_unslotted)) % len(_PIN_CPUS)]
        super().__init__(config, sockets)

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # pragma: no cover (in the worker)
        if self.cpu is not None:
            try:
                os.sched_setaffinity(0, {self.cpu})  # before any thread starts: they all inherit it
            except OSError as exc:
                log.warning("worker not pinned to CPU %s: %s", self.cpu, exc)
        super().target(sockets)

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = BoundedServer(config=self.config)
        return self._server


def use_in_workers(*, pin: bool = False) -> bool:
    """Make uvicorn's supervisor start ``BoundedProcess`` workers (each on its own CPU if ``pin``).
    False, with a warning, when this uvicorn's supervisor is not the shape this was written against
    (the workers then keep asyncio's 60 s handshake timeout, and float)."""
    global _PIN_CPUS
    _PIN_CPUS = sorted(os.sched_getaffinity(0)) if pin and hasattr(os, "sched_getaffinity") else None
    current = getattr(multiprocess, "Process", None)
    if current is BoundedProcess:
        return True
    if (not isinstance(current, type) or not isinstance(getattr(current, "server", None), property)
            or list(inspect.signature(current.__init__).parameters) != ["self", "config", "sockets"]):
        log.warning("uvicorn's worker supervisor changed shape; TLS handshakes in workers keep the 60 s default,"
                    " every worker serves every socket%s", ", and no worker is pinned" if pin else "")
        return False
    multiprocess.Process = BoundedProcess
    return True
