"""Durable audit events without one fsync per request: group commit.

A call's response is sent only after its event is committed (the Query endpoint awaits the
future ``submit`` returns), so every call a client saw answered is in the trail, even if the server
is killed right after. To keep that cheap, one writer thread per process commits events in
batches: while one batch is being committed, the events that arrive queue up and go in the next
transaction together. When idle, an event is written at once (no timer, no added latency); under
load, one commit (one fsync with SQLite's synchronous=FULL) covers many requests.

If the commit fails, every waiting call gets the exception: the response becomes an error
rather than an unaudited success (fail closed). Events not yet committed when the process dies
were never acknowledged.
"""

from __future__ import annotations

import concurrent.futures
import json
import threading
from collections import deque
from typing import Any

from sqlalchemy import insert

from rolebridge.store import Store
from rolebridge.store.schema import AuditEvent

MAX_BATCH = 500


def to_row(event: dict[str, Any]) -> dict[str, Any]:
    from rolebridge.audit.query import parse_time

    return {
        "event_id": event["eventID"],
        "event_time": parse_time(event["eventTime"]),
        "event_name": event["eventName"],
        "event_source": event["eventSource"],
        "recipient_account_id": event.get("recipientAccountId"),
        "caller_account_id": (event.get("userIdentity") or {}).get("accountId"),
        "error_code": event.get("errorCode"),
        "body": json.dumps(event, separators=(",", ":"), sort_keys=False),
    }


class AuditWriter:
    """Queues events and commits them in batches on a daemon thread."""

    def __init__(self, store: Store, *, max_batch: int = MAX_BATCH) -> None:
        self.store = store
        self.max_batch = max_batch
        self._pending: deque[tuple[dict[str, Any], concurrent.futures.Future[None]]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="rolebridge-audit", daemon=True)
        self._thread.start()
        self.batches = 0  # commits made (for tests and the bench: events per commit)

    def submit(self, event: dict[str, Any]) -> concurrent.futures.Future[None]:
        """Queue one event; the future completes once it is committed."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        row = to_row(event)
        with self._cond:
            if self._closed:
                future.set_exception(RuntimeError("audit writer is closed"))
                return future
            self._pending.append((row, future))
            self._cond.notify()
        return future

    def write_now(self, event: dict[str, Any]) -> None:
        """Write one event synchronously (CLI paths with no event loop)."""
        self.submit(event).result()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending and self._closed:
                    return
                batch = [self._pending.popleft() for _ in range(min(self.max_batch, len(self._pending)))]
            try:
                with self.store.tx() as s:
                    s.execute(insert(AuditEvent), [row for row, _ in batch])
            except BaseException as exc:  # every waiter must hear about it
                for _, future in batch:
                    future.set_exception(exc)
                continue
            self.batches += 1
            for _, future in batch:
                future.set_result(None)

    def close(self, timeout: float = 10) -> None:
        """Commit what is queued, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)
