"""Reading the trail back: filters for `rolebridge audit` and the JSON-lines export."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import IO, Any

from sqlalchemy import or_, select

from rolebridge.store import Store
from rolebridge.store.schema import AuditEvent

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str, *, now: float | None = None) -> float:
    """Epoch seconds from ISO 8601 (``2025-01-02T03:04:05Z``), epoch seconds, or an age (``15m``, ``7d``)."""
    text = text.strip()
    m = _RELATIVE.match(text)
    if m:
        base = dt.datetime.now(dt.UTC).timestamp() if now is None else now
        return base - float(m.group(1)) * _UNITS[m.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a time: use ISO 8601, epoch seconds, or an age like 15m, 2h, 7d"
                         ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def iter_events(store: Store, *, account: str | None = None, event_name: str | None = None,
                since: float | None = None, until: float | None = None, errors_only: bool = False,
                limit: int | None = None, newest: bool = False, batch: int = 1000) -> Iterator[dict[str, Any]]:
    """Events oldest first. ``account`` matches the acted-on account or the caller's.

    ``limit`` keeps the first ``limit`` matching events, or with ``newest`` the last ``limit`` (still
    yielded oldest first): what a user asking for "the last 50 calls" means. What this host's
    journal holds is moved into the database first, so every acknowledged call is seen.
    """
    from rolebridge.audit.ingest import ingest

    ingest(store)
    stmt = select(AuditEvent.id, AuditEvent.body).order_by(AuditEvent.id)
    if account:
        stmt = stmt.where(or_(AuditEvent.recipient_account_id == account,
                              AuditEvent.caller_account_id == account))
    if event_name:
        stmt = stmt.where(AuditEvent.event_name == event_name)
    if since is not None:
        stmt = stmt.where(AuditEvent.event_time >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.event_time <= until)
    if errors_only:
        stmt = stmt.where(AuditEvent.error_code.is_not(None))
    last, seen = 0, 0
    if newest and limit is not None:
        if limit <= 0:
            return
        ids = stmt.with_only_columns(AuditEvent.id).order_by(None).order_by(AuditEvent.id.desc())
        with store.read() as s:
            first = s.execute(ids.offset(limit - 1).limit(1)).scalar()
        last = first - 1 if first is not None else 0  # fewer than ``limit`` match: all of them
    while True:
        with store.read() as s:
            rows = s.execute(stmt.where(AuditEvent.id > last).limit(batch)).all()
        for row_id, body in rows:
            last = row_id
            yield json.loads(body)
            seen += 1
            if limit is not None and seen >= limit:
                return
        if len(rows) < batch:
            return


def export_jsonl(store: Store, out: IO[str], **filters: Any) -> int:
    """Write matching events one JSON object per line; returns how many."""
    count = 0
    for event in iter_events(store, **filters):
        out.write(json.dumps(event, separators=(",", ":")) + "\n")
        count += 1
    return count
