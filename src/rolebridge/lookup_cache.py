"""The in-memory cache behind the STS hot path's lookups, kept correct across processes.

Several worker processes and several servers may share one database, and the CLI writes to it too
(``rolebridge cluster create``, ``rotate``). So a process cannot trust its own memory alone. The rule:

- Every IAM/issuer write, once committed, bumps a generation counter: the ``settings`` row
  ``iam_generation`` (``Services.invalidate()`` calls ``bump``; it runs after the write's
  transaction has committed and before the API call is acknowledged).
- Every cached lookup first reads that one row (a primary-key read on a connection this process
  keeps open: a few microseconds on SQLite, one round trip on PostgreSQL). If it differs from the
  generation the cache was filled under, the whole cache is dropped and the lookup goes to the
  database.

On SQLite every process sharing the database is on one host, so the counter is also kept in an
8-byte file beside the database (``<db>.generation``) that every process maps into memory: reading
it costs a fraction of a microsecond instead of a query, on every request. ``bump`` increments it
(under a ``flock``) after the database row, so both orders of events above still hold. PostgreSQL
servers may be on several hosts: they read the row.

What that guarantees: a lookup that starts after an IAM write was acknowledged, in any process
that shares the database, sees that write (the bump is committed before the acknowledgement, and
the counter is read before the data). That is stronger than AWS, whose IAM is eventually
consistent. Two backstops for writers that bypass ``invalidate()`` or die between their commit and
the bump: entries also expire after ``TTL_SECONDS``, and if the counter cannot be read the cache is
not used at all (fail closed: the database answers).
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import struct
import threading
import time
from collections.abc import Callable, Hashable
from contextvars import ContextVar
from typing import Any, TypeVar

from sqlalchemy.engine import Engine

from rolebridge import pid

GENERATION_KEY = "iam_generation"
TTL_SECONDS = 10.0
MAX_ENTRIES = 50_000
_MISSING = object()
# set per request (each ASGI request runs in its own task, so its own context): one counter read per request
_SCOPE: ContextVar[list[bool] | None] = ContextVar("rolebridge_lookup_scope", default=None)
T = TypeVar("T")

_READ = "SELECT value FROM settings WHERE key = 'iam_generation'"
_BUMP = ("INSERT INTO settings (key, value) VALUES ('iam_generation', '1') ON CONFLICT (key) DO UPDATE "
         "SET value = CAST(CAST(settings.value AS BIGINT) + 1 AS VARCHAR(32))")


class SharedCounter:
    """An 8-byte little-endian counter in a file, mapped shared by every process that opens it."""

    _FORMAT = struct.Struct("<Q")

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            if os.fstat(self._fd).st_size < self._FORMAT.size:
                os.ftruncate(self._fd, self._FORMAT.size)  # zero-filled: generation 0
            self._map = mmap.mmap(self._fd, self._FORMAT.size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            os.close(self._fd)
            raise

    def read(self) -> int:
        return int(self._FORMAT.unpack_from(self._map)[0])  # an aligned 8-byte load: never torn

    def increment(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            self._FORMAT.pack_into(self._map, 0, self.read() + 1)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._map.close()
        with contextlib.suppress(OSError):
            os.close(self._fd)


def _shared_counter(engine: Engine) -> SharedCounter | None:
    """The mapped counter for a SQLite file database (None elsewhere, or if it cannot be mapped)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    try:
        return SharedCounter(f"{url.database}.generation")
    except OSError:
        return None  # the database row still answers


class LookupCache:
    """Per-process memo of (kind, key) -> value, valid for one database generation."""

    def __init__(self, engine: Engine, *, ttl: float = TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._generation: str | object | None = _MISSING
        self._conn: Any = None
        self._conn_pid = 0
        self._lock = threading.Lock()  # the raw connection is shared by whatever threads call lookups
        self._counter = _shared_counter(engine)
        self.hits = 0
        self.misses = 0

    # -- the counter --------------------------------------------------------------------------
    def _raw(self) -> Any:
        if self._conn is None or self._conn_pid != pid.current():
            self._conn = self.engine.raw_connection()
            self._conn_pid = pid.current()
        return self._conn

    def read_generation(self) -> str | None:
        """The committed generation now; raises if the database cannot be read."""
        if self._counter is not None:
            return str(self._counter.read())
        with self._lock:
            conn = self._raw()
            try:
                cur = conn.cursor()
                try:
                    cur.execute(_READ)
                    rows = cur.fetchall()
                finally:
                    cur.close()
                conn.rollback()  # never sit in an open transaction (no stale snapshot, no idle-in-tx)
            except Exception:
                self._drop_connection()
                raise
        return str(rows[0][0]) if rows else None

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken: nothing to keep
                conn.invalidate() if hasattr(conn, "invalidate") else conn.close()

    def bump(self) -> None:
        """Publish "IAM changed" to every process: call after the write has committed."""
        self.clear()
        with self.engine.begin() as conn:
            conn.exec_driver_sql(_BUMP)
        if self._counter is not None:
            self._counter.increment()

    # -- the memo -----------------------------------------------------------------------------
    @staticmethod
    def request_scope() -> None:
        """Start of one API request: its lookups share one counter read (the first one makes it).

        The request still sees every write acknowledged before it started. Outside a request scope
        (CLI, tests calling handlers directly) every lookup reads the counter.
        """
        _SCOPE.set([False])

    def clear(self) -> None:
        self._entries = {}
        self._generation = _MISSING

    def _fresh(self) -> bool:
        try:
            generation = self.read_generation()
        except Exception:  # fail closed: without the counter, the database answers
            self.clear()
            return False
        if generation != self._generation:
            self._entries = {}
            self._generation = generation
        return True

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        """``load()``'s value for ``key``, from memory when nothing changed since it was loaded."""
        scope = _SCOPE.get()
        if scope is None or not scope[0]:
            if not self._fresh():
                return load()
            if scope is not None:
                scope[0] = True
        now = self.clock()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            self.hits += 1
            return entry[1]  # type: ignore[no-any-return]
        self.misses += 1
        generation = self._generation
        value = load()
        if self._generation is generation:  # not invalidated while loading
            if len(self._entries) >= MAX_ENTRIES:
                self._entries = {}
            self._entries[key] = (now + self.ttl, value)
        return value

    def close(self) -> None:
        with self._lock:
            self._drop_connection()
        if self._counter is not None:
            self._counter.close()
            self._counter = None
