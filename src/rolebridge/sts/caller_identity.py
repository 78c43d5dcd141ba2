"""GetCallerIdentity: who the signed request's keys belong to. Needs no permission, as in AWS."""

from __future__ import annotations

from typing import Any

from rolebridge.context import CallContext
from rolebridge.iam.registry import operation


@operation("sts", "GetCallerIdentity", action=None)
def get_caller_identity(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    caller = ctx.require_caller()
    return {"UserId": caller.user_id, "Account": caller.account_id, "Arn": caller.arn}
