"""Time is injected into every check: one Clock type, a real one and a fixed one for tests."""

from __future__ import annotations

import datetime as dt
import math
import time
from typing import Protocol


class Clock(Protocol):
    def __call__(self) -> float: ...


def system_clock() -> float:
    return time.time()


class FixedClock:
    """A clock that says what it is told; for replaying cases at their recorded time."""

    def __init__(self, now: float) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


_ISO: dict[int, str] = {}  # second -> text; a call formats "now" and its expiry, often the same seconds


def iso8601(ts: float) -> str:
    """``2023-11-14T22:13:20Z``: whole seconds, UTC, as AWS writes times (``aws:CurrentTime``,
    CloudTrail's ``eventTime``). Recent seconds' texts are reused: ``strftime`` is ~1.5 µs a call."""
    second = math.floor(ts)  # the second it falls in, as strftime writes it (before 1970 too)
    text = _ISO.get(second)
    if text is None:
        if len(_ISO) >= 64:
            _ISO.clear()
        text = _ISO[second] = dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return text
