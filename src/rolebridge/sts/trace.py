"""A record of the checks one assume made, in order: what STS decided and why.

AWS answers most failures with one fixed sentence; the trace is what we say on top. STS fills it
as it goes (it costs a list append per check), ``rolebridge explain`` and ``rolebridge run`` read it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""
    expected: Any = None
    seen: Any = None
    cause: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    skipped: bool = False  # not made (e.g. offline, no keys): neither passed nor failed

    @property
    def status(self) -> str:
        return "skipped" if self.skipped else "ok" if self.ok else "fail"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: v for k, v in d.items() if v not in (None, {}, "")}


class Trace:
    def __init__(self) -> None:
        self.checks: list[Check] = []

    def ok(self, name: str, detail: str = "", **kw: Any) -> None:
        self.checks.append(Check(name, True, detail, **kw))

    def fail(self, name: str, detail: str, *, cause: str | None = None, **kw: Any) -> Check:
        check = Check(name, False, detail, cause=cause, **kw)
        self.checks.append(check)
        return check

    def skip(self, name: str, detail: str, **kw: Any) -> None:
        """A check that was not made; it does not stop the replay, and it never reads as passed."""
        self.checks.append(Check(name, True, detail, skipped=True, **kw))

    @property
    def failed(self) -> Check | None:
        return next((c for c in self.checks if not c.ok), None)


class NullTrace(Trace):
    """The hot path's trace: records nothing."""

    def ok(self, name: str, detail: str = "", **kw: Any) -> None:
        return None

    def fail(self, name: str, detail: str, *, cause: str | None = None, **kw: Any) -> Check:
        return Check(name, False, detail, cause=cause, **kw)

    def skip(self, name: str, detail: str, **kw: Any) -> None:
        return None
