"""Moving journal lines (``audit.journal``) into ``audit_events``, where the trail is queried.

Exactly once: each transaction inserts a run of complete lines of one segment and records, in the
same transaction, how far that segment is done (``audit_journal_progress``). One ingester works on
a data dir at a time (``flock`` on ``audit/ingest.lock``); segment names are unique per host, so
servers on several hosts sharing one PostgreSQL database each move their own journals.

Who runs it:
- a child process of ``rolebridge server``, at low CPU priority (``--follow``), that keeps the
  table within a fraction of a second of the journal when the machine has time, catches up after
  a burst when it has not, and moves in what a crashed server left;
- every reader (``audit.query``) before it reads, so a query sees every acknowledged call of this
  host even while the follower lags.

A finished segment (no process holds its lock) is deleted once fully moved; an unterminated last
line of a finished segment is a batch its process died writing, never acknowledged, and dropped.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert

from rolebridge import fastjson
from rolebridge.audit.journal import SEGMENT_SUFFIX, is_live, journal_dir
from rolebridge.store import Store
from rolebridge.store.schema import AuditEvent, AuditJournalProgress

CHUNK_BYTES = 4 * 1024 * 1024  # per transaction; one event is a few KB (request bodies are bounded)
MAX_LINE_BYTES = 32 * 1024 * 1024
log = logging.getLogger("rolebridge.audit")
_INSERT = insert(AuditEvent.__table__)
#: ``audit_events`` columns in the order ``event_row`` gives them. Rows go to the driver's own
#: ``executemany`` as tuples: SQLAlchemy's per-row parameter processing was about a quarter of the
#: follower's CPU per event (16-18 -> 13-14 µs in bulk on SQLite; not measured on PostgreSQL, where
#: psycopg's own executemany does the batching), and the follower shares the serving machine.
COLUMNS = ("event_id", "event_time", "event_name", "event_source", "recipient_account_id", "caller_account_id",
           "error_code", "body")
# by the driver's placeholder style (sqlite3: qmark; psycopg: pyformat), from the constants above only
_DRIVER_INSERT = {style: f"INSERT INTO {AuditEvent.__tablename__} ({', '.join(COLUMNS)}) "  # noqa: S608
                         f"VALUES ({', '.join([mark] * len(COLUMNS))})"
                  for style, mark in (("qmark", "?"), ("format", "%s"), ("pyformat", "%s"))}


def _insert(session: Any, rows: list[tuple[Any, ...]]) -> None:
    connection = session.connection()
    sql = _DRIVER_INSERT.get(connection.dialect.paramstyle)
    if sql is None:  # a driver of another placeholder style: SQLAlchemy's own (slower) path
        session.execute(_INSERT, [dict(zip(COLUMNS, row, strict=True)) for row in rows])
        return
    connection.exec_driver_sql(sql, rows)


def ingest(store: Store, *, directory: Path | None = None, block: bool = True) -> int:
    """Move every complete journal line into the database; returns the number of events moved.

    ``block=False`` returns 0 at once when another ingester is at work (the follower's choice).
    """
    directory = directory or journal_dir(store.paths.data_dir)
    if not directory.is_dir():
        return 0
    with _ingest_lock(directory, block) as held:
        if not held:
            return 0
        _drop_abandoned_staging(directory)
        return sum(_ingest_segment(store, path) for path in sorted(directory.glob(f"*{SEGMENT_SUFFIX}")))


@contextlib.contextmanager
def _ingest_lock(directory: Path, block: bool) -> Iterator[bool]:
    fd = os.open(directory / "ingest.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if block else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # releases the lock


STAGING_GRACE_S = 60.0


def _drop_abandoned_staging(directory: Path) -> None:
    """A segment is created as ``.new`` and renamed microseconds later, once locked. Between its
    ``open`` and its ``flock`` it is unlocked, so only an unlocked ``.new`` older than a minute is
    a crash's leftover (and it is empty: nothing is written before the rename)."""
    for path in directory.glob("*.new"):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            if time.time() - os.fstat(fd).st_mtime > STAGING_GRACE_S and not is_live(fd):
                path.unlink(missing_ok=True)
        finally:
            os.close(fd)


def _ingest_segment(store: Store, path: Path) -> int:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return 0
    try:
        # Liveness first: a segment finished now holds every line it ever will, so reading it to
        # its end and deleting it loses nothing.
        live = is_live(fd)
        name = path.name
        with store.read() as s:
            progress = s.get(AuditJournalProgress, name)
            done = progress.done_bytes if progress is not None else 0
        moved, chunk_bytes = 0, CHUNK_BYTES
        while True:
            chunk = os.pread(fd, chunk_bytes, done)
            end = chunk.rfind(b"\n") + 1
            if end == 0:
                if len(chunk) == chunk_bytes and chunk_bytes < MAX_LINE_BYTES:
                    chunk_bytes *= 2  # one line longer than a chunk: read more of it
                    continue
                break
            rows = list(_rows(chunk[:end], name))
            done += end
            with store.tx() as s:
                if rows:
                    _insert(s, rows)
                s.merge(AuditJournalProgress(segment=name, done_bytes=done))
            moved += len(rows)
            if len(chunk) < chunk_bytes:
                break
        if not live:
            path.unlink(missing_ok=True)
            with store.tx() as s:
                s.execute(delete(AuditJournalProgress).where(AuditJournalProgress.segment == name))
        return moved
    finally:
        os.close(fd)


def event_row(event: dict[str, Any], body: str, times: dict[str, float]) -> tuple[Any, ...]:
    """The ``audit_events`` row of one event (``COLUMNS``): its JSON ``body`` and the columns queries
    filter on.

    ``times`` remembers eventTime texts already parsed (a batch holds a few distinct seconds)."""
    from rolebridge.audit.query import parse_time

    text = event["eventTime"]
    when = times.get(text)
    if when is None:
        when = times[text] = parse_time(text)
    return (event["eventID"], when, event["eventName"], event["eventSource"], event.get("recipientAccountId"),
            (event.get("userIdentity") or {}).get("accountId"), event.get("errorCode"), body)


def _rows(data: bytes, segment: str) -> Iterator[tuple[Any, ...]]:
    times: dict[str, float] = {}
    for number, line in enumerate(data.split(b"\n")[:-1]):
        try:
            text = line.decode("utf-8")  # lines from before orjson are ASCII, a subset
            yield event_row(fastjson.loads(line), text, times)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # written by this code: never expected
            log.error("audit journal %s: line %d is not an event (%s); skipped", segment, number, type(exc).__name__)


#: The follower goes straight on only after a pass that met a backlog; after a smaller one it
#: sleeps first. Under steady load it then moves a few hundred events per transaction, not the
#: handful that arrived since its last pass (per-pass costs were most of its ~30-40 µs per event).
#: Nobody waits for it: every reader ingests what it needs before it reads.
BACKLOG_EVENTS = 2000


def follow(store: Store, *, parent: int | None, idle_sleep: float = 0.2) -> None:
    """Ingest until the parent process is gone (the server that started this one)."""
    while parent is None or os.getppid() == parent:
        try:
            moved = ingest(store, block=False)
        except Exception:  # the database is away for a moment: the journal keeps everything meanwhile
            log.exception("audit ingest failed; retrying")
            moved = 0
        if moved < BACKLOG_EVENTS:
            time.sleep(idle_sleep)
    ingest(store, block=True)  # what the last moments of the server appended


def main(argv: list[str] | None = None) -> int:
    """``python -m rolebridge.audit.ingest --data-dir D [--database-url U] [--follow --parent PID]``."""
    from rolebridge.config import resolve_paths
    from rolebridge.store import open_store

    ap = argparse.ArgumentParser(description="Move the audit journal into the database.")
    ap.add_argument("--data-dir")
    ap.add_argument("--database-url")
    ap.add_argument("--follow", action="store_true")
    ap.add_argument("--parent", type=int)
    ap.add_argument("--nice", type=int, default=0, help="lower this process's CPU priority by this much")
    args = ap.parse_args(argv)
    if args.nice:
        os.nice(args.nice)
    if args.follow:  # a background process group of the server's terminal: never stopped for writing to it
        signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    store = open_store(resolve_paths(args.data_dir, args.database_url))
    try:
        if args.follow:
            follow(store, parent=args.parent)
        else:
            print(ingest(store))
    except KeyboardInterrupt:
        pass
    finally:
        store.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
