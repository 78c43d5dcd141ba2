"""The audit journal and its ingest: durable lines, exactly-once moves, torn tails, live segments.

All in-process against a real SQLite store and real files; the server-level behaviour (a kill -9
loses no acknowledged event) is in tests/store/test_crash_safety.py.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import func, select

from rolebridge import errors
from rolebridge.audit import AuditWriter, build_event, iter_events
from rolebridge.audit.ingest import ingest
from rolebridge.audit.journal import Journal, journal_dir
from rolebridge.config import resolve_paths
from rolebridge.store import open_store
from rolebridge.store.schema import AuditEvent, AuditJournalProgress


def _event(i: int) -> dict:
    return build_event(service="iam", action="CreateRole", now=1_700_000_000 + i, request_id=f"req-{i}",
                       caller=None, params={"RoleName": f"r{i}"}, result={"Role": {"RoleName": f"r{i}"}})


def _line(i: int) -> bytes:
    return json.dumps(_event(i), separators=(",", ":")).encode() + b"\n"


def _count(store) -> int:  # type: ignore[no-untyped-def]
    with store.read() as s:
        return s.execute(select(func.count()).select_from(AuditEvent)).scalar_one()


def test_events_are_on_disk_before_the_writer_acknowledges_them(tmp_path: Path) -> None:
    store = open_store(resolve_paths(tmp_path))
    writer = AuditWriter(store)
    writer.submit(_event(1)).result(timeout=30)
    segment = writer.journal.path
    assert segment is not None and segment.parent == journal_dir(tmp_path)
    assert stat.S_IMODE(segment.stat().st_mode) == 0o600
    lines = segment.read_bytes().splitlines()
    assert [json.loads(x)["requestID"] for x in lines] == ["req-1"]
    assert _count(store) == 0  # not yet in the table: the request path never touches the database
    writer.close()
    store.dispose()


def test_ingest_moves_each_line_exactly_once_and_keeps_a_live_segment(tmp_path: Path) -> None:
    store = open_store(resolve_paths(tmp_path))
    journal = Journal(journal_dir(tmp_path))
    journal.append([_line(i) for i in range(5)])
    assert ingest(store) == 5
    assert ingest(store) == 0  # nothing new: nothing moved twice
    live = journal.path
    assert live is not None and live.exists()  # its writer may still append
    journal.append([_line(i) for i in range(5, 8)])
    assert ingest(store) == 3
    assert _count(store) == 8
    journal.close()  # finished: the next ingest deletes it, and its progress row
    assert ingest(store) == 0
    assert not live.exists()
    with store.read() as s:
        assert s.execute(select(func.count()).select_from(AuditJournalProgress)).scalar_one() == 0
    assert sorted(e["requestID"] for e in iter_events(store, limit=None)) == sorted(f"req-{i}" for i in range(8))
    store.dispose()


def test_a_torn_last_line_of_a_dead_writer_is_dropped_not_half_recorded(tmp_path: Path) -> None:
    store = open_store(resolve_paths(tmp_path))
    journal = Journal(journal_dir(tmp_path))
    journal.append([_line(1), _line(2)])
    path = journal.path
    assert path is not None
    with open(path, "ab") as f:  # a batch the process died writing: never fsynced, never acknowledged
        f.write(_line(3)[:40])
    journal.close()
    assert ingest(store) == 2
    assert [e["requestID"] for e in iter_events(store, limit=None)] == ["req-1", "req-2"]
    assert not path.exists()
    store.dispose()


def test_a_failed_write_is_cut_back_so_the_next_batch_starts_clean(tmp_path: Path) -> None:
    store = open_store(resolve_paths(tmp_path))
    journal = Journal(journal_dir(tmp_path))
    journal.append([_line(1)])
    first = journal.path

    class Boom(Exception):
        pass

    real_fdatasync = os.fdatasync
    calls = {"n": 0}

    def failing(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise Boom
        real_fdatasync(fd)

    os.fdatasync = failing  # the disk refuses one flush (ENOSPC, EIO): the batch must not survive
    try:
        try:
            journal.append([_line(2)])
        except Boom:
            pass
        else:
            raise AssertionError("the failed flush was not reported")
    finally:
        os.fdatasync = real_fdatasync
    assert journal.path is None  # that segment is finished
    journal.append([_line(3)])
    assert journal.path != first
    journal.close()
    assert [e["requestID"] for e in iter_events(store, limit=None)] == ["req-1", "req-3"]
    store.dispose()


def test_concurrent_ingesters_never_duplicate(tmp_path: Path) -> None:
    store = open_store(resolve_paths(tmp_path))
    writer = AuditWriter(store)
    stop = threading.Event()
    moved: list[int] = []

    def reader() -> None:
        reader_store = open_store(resolve_paths(tmp_path))
        while not stop.is_set():
            moved.append(ingest(reader_store, block=False))
        reader_store.dispose()

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for f in [writer.submit(_event(i)) for i in range(300)]:
        f.result(timeout=30)
    writer.close()
    stop.set()
    for t in threads:
        t.join(30)
    ingest(store)
    ids = [e["requestID"] for e in iter_events(store, limit=None)]
    assert sorted(ids) == sorted(f"req-{i}" for i in range(300))  # each once
    assert sum(moved) <= 300
    store.dispose()


def test_a_killed_writer_process_leaves_its_acknowledged_events_for_the_next_reader(tmp_path: Path) -> None:
    # A process that acknowledged events and was then SIGKILLed: its segment is unlocked (finished)
    # and everything it acknowledged is moved in by whoever reads next.
    open_store(resolve_paths(tmp_path)).dispose()
    code = (
        "import sys, time\n"
        "from rolebridge.audit import AuditWriter, build_event\n"
        "from rolebridge.config import resolve_paths\n"
        "from rolebridge.store import open_store\n"
        "w = AuditWriter(open_store(resolve_paths(sys.argv[1])))\n"
        "for i in range(50):\n"
        "    w.submit(build_event(service='sts', action='GetCallerIdentity', now=1.7e9, request_id=f'k-{i}',"
        " caller=None, params={})).result(30)\n"
        "print('acked', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "acked"
        store = open_store(resolve_paths(tmp_path))
        assert ingest(store) == 50  # a live segment is read too
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 10
        while list(journal_dir(tmp_path).glob("*.jsonl")) and time.monotonic() < deadline:
            ingest(store)  # the dead writer's segment is finished now: deleted once read
            time.sleep(0.05)
        assert list(journal_dir(tmp_path).glob("*.jsonl")) == []
        assert sorted(e["requestID"] for e in iter_events(store, limit=None)) == sorted(f"k-{i}" for i in range(50))
        store.dispose()
    finally:
        proc.kill()
        proc.wait(10)


def test_text_beyond_ascii_and_what_orjson_refuses_reach_the_trail_unchanged(tmp_path: Path) -> None:
    """Lines are orjson's UTF-8 (the standard library's ASCII JSON for what orjson refuses); every
    newline inside a value is escaped, so one line is still one event."""
    store = open_store(resolve_paths(tmp_path))
    writer = AuditWriter(store)
    odd = "caf\u00e9 \u2028 line\nbreak \u00ff \U0001f600 tab\t"
    unicode_event = build_event(service="iam", action="TagRole", now=1_700_000_000, request_id="req-u",
                                caller=None, params={"RoleName": "r", "Tags": [{"Key": "k", "Value": odd}]},
                                user_agent=odd)
    big_int_event = dict(_event(2), requestID="req-big", extra={"n": 2**70})  # beyond orjson's 64 bits
    writer.submit(unicode_event).result(timeout=30)
    writer.submit(big_int_event).result(timeout=30)
    lines = writer.journal.path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 3  # two events, two lines
    writer.close()
    ingest(store)
    by_id = {e["requestID"]: e for e in iter_events(store)}
    assert by_id["req-u"]["userAgent"] == odd
    assert by_id["req-u"]["requestParameters"]["tags"][0]["value"] == odd
    assert by_id["req-big"]["extra"] == {"n": 2**70}
    store.dispose()


def test_ingest_rows_are_the_same_through_the_driver_and_through_sqlalchemys_own_insert(tmp_path: Path) -> None:
    """Rows go to the driver's executemany in its placeholder style; a driver of a style we do not
    write for ("named" here, which SQLAlchemy can ask of sqlite3) takes SQLAlchemy's insert. Both
    give the same rows, NULL columns included."""
    from dataclasses import replace

    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    refused = build_event(service="sts", action="AssumeRole", now=1_700_000_100, request_id="req-x", caller=None,
                          params={"RoleArn": "arn:aws:iam::123456789012:role/r"},
                          error=errors.AccessDenied("no"))
    lines = [_line(1), _line(2), json.dumps(refused, separators=(",", ":")).encode() + b"\n"]
    columns = (AuditEvent.event_id, AuditEvent.event_time, AuditEvent.event_name, AuditEvent.event_source,
               AuditEvent.recipient_account_id, AuditEvent.caller_account_id, AuditEvent.error_code, AuditEvent.body)
    seen = []
    for style in ("qmark", "named"):
        root = tmp_path / style
        store = open_store(resolve_paths(root))
        if style != "qmark":
            engine = create_engine(f"sqlite:///{root / 'rolebridge.db'}", paramstyle=style)
            assert engine.dialect.paramstyle == style
            store.engine.dispose()
            store = replace(store, engine=engine, sessions=sessionmaker(engine, expire_on_commit=False))
        Journal(journal_dir(root)).append(lines)
        assert ingest(store) == 3
        with store.read() as s:
            seen.append([tuple(r) for r in s.execute(select(*columns).order_by(AuditEvent.id)).all()])
        store.dispose()
    assert seen[0] == seen[1]
    assert seen[0][2][6] == "AccessDenied" and seen[0][0][6] is None and seen[0][0][5] is None
    assert [json.loads(row[7])["requestID"] for row in seen[0]] == ["req-1", "req-2", "req-x"]


def test_event_ids_are_time_ordered_uuids_of_the_events_own_time() -> None:
    """eventID is the unique index's key in an ever-growing table: time-ordered (UUID version 7),
    so inserts land at the index's end however large the table (randomness.uuid7)."""
    import uuid

    events = [_event(i) for i in range(50)]  # one second apart
    ids = [e["eventID"] for e in events]
    assert all(uuid.UUID(x).version == 7 for x in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert [int(x.replace("-", "")[:12], 16) for x in ids] == [(1_700_000_000 + i) * 1000 for i in range(50)]
