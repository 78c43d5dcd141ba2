"""Who is calling: the principal behind a signed request, as SigV4 + session tokens establish it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Caller:
    account_id: str
    arn: str
    user_id: str
    kind: str  # "root" | "assumed-role" | "federated-user" (GetSessionToken)
    access_key_id: str
    role_arn: str | None = None
    role_name: str | None = None
    session_name: str | None = None
    expiration: float | None = None
    chained: bool = False
    session: dict[str, Any] = field(default_factory=dict)

    @property
    def is_root(self) -> bool:
        return self.kind == "root"

    @property
    def is_temporary(self) -> bool:
        return self.expiration is not None
