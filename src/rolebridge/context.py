"""What one API call runs with: the store, the caller, the time, and where the request came from.

Handlers in ``iam/`` and ``sts/`` take a ``CallContext`` and a decoded parameter dict and return a
result dict shaped like botocore's output shape; the HTTP layer does the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rolebridge.caller import Caller

if TYPE_CHECKING:
    from rolebridge.services import Services


@dataclass
class CallContext:
    services: Services
    caller: Caller | None
    now: float
    request_id: str
    source_ip: str = "127.0.0.1"
    user_agent: str = ""
    secure: bool = True
    # filled in by handlers for the audit trail
    audit: dict[str, Any] = field(default_factory=dict)

    @property
    def store(self):  # type: ignore[no-untyped-def]
        return self.services.store

    def require_caller(self) -> Caller:
        from rolebridge.errors import MissingAuthenticationToken

        if self.caller is None:
            raise MissingAuthenticationToken()
        return self.caller


Handler = Callable[[CallContext, dict[str, Any]], dict[str, Any]]
