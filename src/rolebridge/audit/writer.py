"""Durable audit events without one fsync per request: group commit.

A call's response is sent only after its event is committed (the Query endpoint awaits what
``submit_async`` returns), so every call a client saw answered is in the trail, even if the server
is killed right after. To keep that cheap, one writer thread per process commits events in
batches: while one batch is being committed, the events that arrive queue up and go in the next
transaction together. When idle, an event is written at once (no timer, no added latency); under
load, one commit (one fsync with SQLite's synchronous=FULL) covers many requests.

What the request path pays is kept small, because on a busy server it is paid by the event loop
that also parses, verifies and answers:

- it hands over the call's raw inputs (``CallRecord``); the writer thread builds the CloudTrail
  dict and its JSON just before the insert;
- from an event loop, the records of one loop iteration are handed over together (one lock and
  one wake-up of the writer per iteration, not per request), and the writer wakes that loop once
  per committed batch (one ``call_soon_threadsafe``), not once per request;
- the insert is one Core ``executemany`` on a connection the writer keeps, one commit per batch.

If the commit fails, every waiting call gets the exception: the response becomes an error
rather than an unaudited success (fail closed). Events not yet committed when the process dies
were never acknowledged.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import json
import os
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import insert

from rolebridge.audit.events import CallRecord
from rolebridge.store import Store
from rolebridge.store.schema import AuditEvent

MAX_BATCH = 500
_INSERT = insert(AuditEvent.__table__)
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode

# A waiter is a concurrent Future (threads, CLI) or (loop, asyncio Future) (the ASGI endpoints).
Waiter = concurrent.futures.Future[None] | tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]


def to_row(event: dict[str, Any]) -> dict[str, Any]:
    """The ``audit_events`` row for an already built event."""
    from rolebridge.audit.query import parse_time

    return _row(event, parse_time(event["eventTime"]))


def _row(event: dict[str, Any], event_time: float) -> dict[str, Any]:
    return {
        "event_id": event["eventID"],
        "event_time": event_time,
        "event_name": event["eventName"],
        "event_source": event["eventSource"],
        "recipient_account_id": event.get("recipientAccountId"),
        "caller_account_id": (event.get("userIdentity") or {}).get("accountId"),
        "error_code": event.get("errorCode"),
        "body": _dumps(event),
    }


def _record_row(record: CallRecord) -> dict[str, Any]:
    # eventTime is whole seconds: the filter column holds the same instant the body shows
    return _row(record.event(), float(int(record.now)))


def _settle(futures: list[asyncio.Future[None]], exc: BaseException | None) -> None:
    """On the waiting loop: complete one batch's futures (a cancelled waiter is skipped)."""
    for future in futures:
        if not future.done():
            if exc is None:
                future.set_result(None)
            else:
                future.set_exception(exc)


class AuditWriter:
    """Queues events and commits them in batches on a daemon thread."""

    def __init__(self, store: Store, *, max_batch: int = MAX_BATCH) -> None:
        self.store = store
        self.max_batch = max_batch
        self._pending: deque[tuple[dict[str, Any] | CallRecord, Waiter]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        # per event loop: the records of its current iteration, handed over by one call_soon
        self._ticks: dict[asyncio.AbstractEventLoop, list[tuple[CallRecord, Waiter]]] = {}
        self._conn: Any = None  # only the writer thread touches it
        url = store.engine.url
        database = url.database if url.get_backend_name() == "sqlite" else None
        self._lock_path = f"{database}.audit.lock" if database and database != ":memory:" else None
        self._lock_fd: int | None = None
        self.batches = 0  # commits made (for tests and the bench: events per commit)
        self.events = 0  # events committed
        self._thread = threading.Thread(target=self._run, name="rolebridge-audit", daemon=True)
        self._thread.start()

    # -- handing events over ---------------------------------------------------------------------
    def submit(self, event: dict[str, Any] | CallRecord) -> concurrent.futures.Future[None]:
        """Queue one event (built, or a ``CallRecord`` to build); the future completes once it is committed."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._enqueue([(event, future)])
        return future

    def submit_async(self, record: CallRecord) -> asyncio.Future[None]:
        """From a coroutine: queue one call's record; await the result to know it is committed.

        Records of one loop iteration travel to the writer together (see the module docstring).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        tick = self._ticks.get(loop)
        if tick is None:
            tick = self._ticks[loop] = []
            loop.call_soon(self._hand_over, loop)
        tick.append((record, (loop, future)))
        return future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        self._enqueue(self._ticks.pop(loop, []))

    def _enqueue(self, items: list[tuple[dict[str, Any] | CallRecord, Waiter]]) -> None:
        if not items:
            return
        with self._cond:
            if not self._closed:
                self._pending.extend(items)
                self._cond.notify()
                return
        self._resolve([waiter for _, waiter in items], RuntimeError("audit writer is closed"))

    def write_now(self, event: dict[str, Any]) -> None:
        """Write one event synchronously (CLI paths with no event loop)."""
        self.submit(event).result()

    # -- the writer thread -------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending and self._closed:
                    self._disconnect()
                    if self._lock_fd is not None:
                        os.close(self._lock_fd)
                        self._lock_fd = None
                    return
                batch = [self._pending.popleft() for _ in range(min(self.max_batch, len(self._pending)))]
            rows, waiters = [], []
            for item, waiter in batch:
                try:
                    rows.append(_record_row(item) if isinstance(item, CallRecord) else to_row(item))
                except BaseException as exc:  # this call's event cannot be shaped: only it fails
                    self._resolve([waiter], exc)
                    continue
                waiters.append(waiter)
            if not rows:
                continue
            try:
                self._insert(rows)
            except BaseException as exc:  # every waiter must hear about it
                self._resolve(waiters, exc)
                continue
            self.batches += 1
            self.events += len(rows)
            self._resolve(waiters, None)

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        """One transaction for the batch; a connection the database dropped is replaced once."""
        for attempt in (1, 2):
            conn = self._connection()
            try:
                with self._commit_turn():
                    conn.execute(_INSERT, rows)
                    conn.commit()
                return
            except sa_exc.DBAPIError as exc:
                self._disconnect()
                if attempt == 2 or not exc.connection_invalidated:
                    raise
            except BaseException:
                self._disconnect()
                raise

    @contextlib.contextmanager
    def _commit_turn(self) -> Iterator[None]:
        """On SQLite, writers of several processes (``--workers N``) take turns through a file lock.

        SQLite lets one writer in at a time and makes the others wait in its busy handler, which
        sleeps in growing steps (up to 100 ms each) rather than waking when the lock is released:
        with two workers committing batches back to back, some requests waited over a second.
        ``flock`` blocks in the kernel and wakes the next writer as soon as the lock is released.
        """
        if self._lock_path is None:
            yield
            return
        if self._lock_fd is None:
            self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = self.store.engine.connect()
        return self._conn

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken: nothing to keep
                conn.close()

    @staticmethod
    def _resolve(waiters: list[Waiter], exc: BaseException | None) -> None:
        """Complete waiters: thread futures directly, loop futures with one wake-up per loop."""
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for waiter in waiters:
            if isinstance(waiter, tuple):
                by_loop.setdefault(waiter[0], []).append(waiter[1])
            elif exc is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(exc)
        for loop, futures in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is waiting any more
                loop.call_soon_threadsafe(_settle, futures, exc)

    def close(self, timeout: float = 10) -> None:
        """Commit what is queued, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)
