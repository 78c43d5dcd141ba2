"""The operation table: AWS action name -> handler, plus what it authorizes against.

Each handler is registered with the IAM action it needs (``iam:CreateRole``) and a function that
names the resource ARN from the call's parameters, so authorization is declared next to the
operation rather than sprinkled through it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rolebridge.context import CallContext, Handler

ResourceOf = Callable[[CallContext, dict[str, Any]], str]


@dataclass(frozen=True)
class Operation:
    service: str
    name: str
    handler: Handler
    action: str | None  # None: no authorization (e.g. GetCallerIdentity, AssumeRoleWithWebIdentity)
    resource: ResourceOf
    signed: bool = True


OPERATIONS: dict[tuple[str, str], Operation] = {}


def _any(_ctx: CallContext, _p: dict[str, Any]) -> str:
    return "*"


def operation(
    service: str,
    name: str,
    *,
    action: str | None = "",
    resource: ResourceOf = _any,
    signed: bool = True,
) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        act = f"{service}:{name}" if action == "" else action
        OPERATIONS[(service, name)] = Operation(service, name, fn, act, resource, signed)
        return fn

    return deco
