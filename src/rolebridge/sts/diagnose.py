"""Replay an AssumeRoleWithWebIdentity in-process with a trace: the same checks STS makes, explained.

Used by ``rolebridge run`` when a job's assume is refused, and by ``rolebridge explain``.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from rolebridge import errors
from rolebridge.context import CallContext
from rolebridge.services import Services
from rolebridge.sts.trace import Trace
from rolebridge.sts.web_identity import assume_role_with_web_identity


@dataclass
class Diagnosis:
    outcome: str  # "success" | "error"
    error: errors.AWSError | None
    trace: Trace
    result: dict[str, Any] | None

    @property
    def error_code(self) -> str | None:
        return self.error.code if self.error else None


def diagnose_web_identity(services: Services, *, role_arn: str, token: str, session_name: str,
                          duration: int | None = None, now: float | None = None) -> Diagnosis:
    trace = Trace()
    ctx = CallContext(services=services, caller=None, now=services.clock() if now is None else now,
                      request_id=str(uuid.uuid4()))
    params: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": session_name, "WebIdentityToken": token}
    if duration is not None:
        params["DurationSeconds"] = duration
    try:
        result = asyncio.run(assume_role_with_web_identity(ctx, params, trace))
    except errors.AWSError as exc:
        if trace.failed is None:
            trace.fail("request", exc.message, cause="other")
        return Diagnosis("error", exc, trace, None)
    return Diagnosis("success", None, trace, result)
