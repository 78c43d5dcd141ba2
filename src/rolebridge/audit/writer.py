"""Durable audit events without one fsync per request: group commit to the journal.

A call's response is sent only after its event is durable (the Query endpoint awaits what
``submit_async`` returns), so every call a client saw answered is in the trail, even if the server
is killed right after. To keep that cheap, one writer thread per process appends events to this
process's journal segment (``audit.journal``) in batches: while one batch is being written and
``fdatasync``-ed, the events that arrive queue up and go in the next write together. When idle, an
event is written at once (no timer, no added latency); under load, one fsync covers many requests.
The database table that queries read is filled from the journal off the request path
(``audit.ingest``).

What the request path pays is kept small, because on a busy server it is paid by the event loop
that also parses, verifies and answers:

- a call captures its raw inputs (``CallRecord``); once per loop iteration the loop shapes that
  iteration's CloudTrail events and their JSON (``fastjson``, ~11 µs an assume) and hands the
  lines over together (one lock and one wake-up of the writer per iteration, not per request);
  shaping on the writer thread instead made no difference in CPU and kept the GIL busy there;
- the writer thread only makes system calls: the write and the fsync, which release the GIL, so
  the event loop runs while the disk works; it wakes that loop once per written batch (one
  ``call_soon_threadsafe``), not once per request.

If the append fails, every waiting call gets the exception: the response becomes an error
rather than an unaudited success (fail closed). Events not yet durable when the process dies
were never acknowledged.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import queue
import threading
from pathlib import Path
from typing import Any

from rolebridge import fastjson
from rolebridge.audit.events import CallRecord
from rolebridge.audit.journal import Journal, journal_dir
from rolebridge.store import Store

MAX_BATCH = 500
log = logging.getLogger("rolebridge.audit")

# A waiter is a concurrent Future (threads, CLI) or (loop, asyncio Future) (the ASGI endpoints).
Waiter = concurrent.futures.Future[None] | tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]


def _line(item: dict[str, Any] | CallRecord) -> bytes:
    """One journal line: the event's JSON (``fastjson``: no newline can hide in it) and a newline."""
    event = item.event() if isinstance(item, CallRecord) else item
    return fastjson.dumps(event) + b"\n"


def _settle(futures: list[asyncio.Future[None]], exc: BaseException | None) -> None:
    """On the waiting loop: complete one batch's futures (a cancelled waiter is skipped)."""
    for future in futures:
        if not future.done():
            if exc is None:
                future.set_result(None)
            else:
                future.set_exception(exc)


class AuditWriter:
    """Queues events and appends them to the journal in batches on a daemon thread."""

    def __init__(self, store: Store, *, max_batch: int = MAX_BATCH, directory: Path | None = None) -> None:
        self.store = store
        self.max_batch = max_batch
        self.journal = Journal(directory or journal_dir(store.paths.data_dir))
        # lists of (journal line, waiter), shaped by the submitter, then _CLOSE; a C-level queue, as the
        # loop hands over once per iteration (threading.Condition's Python-level notify cost more)
        self._queue: queue.SimpleQueue[list[tuple[bytes, Waiter]] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()  # orders the last hand-over before _CLOSE
        self._closed = False
        # per event loop: the records of its current iteration, handed over by one call_soon
        self._ticks: dict[asyncio.AbstractEventLoop, list[tuple[CallRecord, Waiter]]] = {}
        self.batches = 0  # appends made (for tests and the bench: events per fsync)
        self.events = 0  # events made durable
        self._thread = threading.Thread(target=self._run, name="rolebridge-audit", daemon=True)
        self._thread.start()

    # -- handing events over ---------------------------------------------------------------------
    def submit(self, event: dict[str, Any] | CallRecord) -> concurrent.futures.Future[None]:
        """Queue one event (built, or a ``CallRecord`` to build); the future completes once it is durable."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._enqueue(self._shaped([(event, future)]))
        return future

    def submit_async(self, record: CallRecord) -> asyncio.Future[None]:
        """From a coroutine: queue one call's record; await the result to know it is durable.

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
        """On the loop, once per iteration: shape this iteration's events, then hand the bytes over.

        Shaping here rather than on the writer thread keeps the GIL with the loop: the writer then
        only makes system calls (``write``, ``fdatasync``), which run without it.
        """
        self._enqueue(self._shaped(self._ticks.pop(loop, [])))

    def _shaped(self, items: list[tuple[Any, Waiter]]) -> list[tuple[bytes, Waiter]]:
        """Each event's journal line; a call whose event cannot be shaped fails alone, at once."""
        out: list[tuple[bytes, Waiter]] = []
        for item, waiter in items:
            try:
                out.append((_line(item), waiter))
            except BaseException as exc:
                self._resolve([waiter], exc)
        return out

    def _enqueue(self, items: list[tuple[bytes, Waiter]]) -> None:
        if not items:
            return
        with self._lock:
            if not self._closed:
                self._queue.put(items)
                return
        self._resolve([waiter for _, waiter in items], RuntimeError("audit writer is closed"))

    def write_now(self, event: dict[str, Any]) -> None:
        """Write one event synchronously (CLI paths with no event loop)."""
        self.submit(event).result()

    # -- the writer thread -------------------------------------------------------------------------
    def _run(self) -> None:
        closing = False
        while not closing:
            batch: list[tuple[bytes, Waiter]] = []
            items = self._queue.get()  # waits without the GIL
            while True:  # what else is queued, up to about max_batch (one hand-over more at most)
                if items is None:
                    closing = True  # nothing follows _CLOSE (see close)
                    break
                batch += items
                if len(batch) >= self.max_batch:
                    break
                try:
                    items = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                try:
                    self._append(batch)
                except Exception:  # a defect: logged, and the thread goes on serving the calls after it
                    log.exception("audit writer: a batch of %d events failed to complete", len(batch))
        self.journal.close()

    def _append(self, batch: list[tuple[bytes, Waiter]]) -> None:
        lines = [line for line, _ in batch]
        waiters = [waiter for _, waiter in batch]
        try:
            self.journal.append(lines)
        except BaseException as exc:  # every waiter must hear about it
            self._resolve(waiters, exc)
            return
        self.batches += 1
        self.events += len(lines)
        self._resolve(waiters, None)

    @staticmethod
    def _resolve(waiters: list[Waiter], exc: BaseException | None) -> None:
        """Complete waiters: thread futures directly, loop futures with one wake-up per loop."""
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for waiter in waiters:
            if isinstance(waiter, tuple):
                by_loop.setdefault(waiter[0], []).append(waiter[1])
                continue
            # a waiter that gave up (its future cancelled: a request cancelled at shutdown) is skipped;
            # raising here would end the writer thread and leave every later call waiting
            with contextlib.suppress(concurrent.futures.InvalidStateError):
                if exc is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(exc)
        for loop, futures in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is waiting any more
                loop.call_soon_threadsafe(_settle, futures, exc)

    def close(self, timeout: float = 10) -> None:
        """Write what is queued, then stop the thread (its journal segment is then finished)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(None)  # _CLOSE: after every hand-over made before it
        self._thread.join(timeout)
