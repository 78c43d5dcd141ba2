"""Replay an AssumeRoleWithWebIdentity in-process with a trace: the same checks STS makes, explained.

Used by ``rolebridge run`` when a job's assume is refused, and by ``rolebridge explain``.

Parameter constraints (lengths, patterns, ranges) are checked by the wire layer from botocore's
model before a handler runs; core modules do not import ``http/``, so callers that want those
checks replayed too pass the wire layer's decoder as ``validate``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
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
                          duration: int | None = None, now: float | None = None,
                          validate: Callable[[dict[str, str]], dict[str, Any]] | None = None) -> Diagnosis:
    trace = Trace()
    ctx = CallContext(services=services, caller=None, now=services.clock() if now is None else now,
                      request_id=str(uuid.uuid4()))
    params: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": session_name, "WebIdentityToken": token}
    if duration is not None:
        params["DurationSeconds"] = duration
    if validate is not None:
        flat = {k: str(v) for k, v in params.items()}
        try:
            params = validate(flat)
        except errors.AWSError as exc:
            trace.fail("parameters", exc.message, cause=_parameter_cause(exc.message))
            return Diagnosis("error", exc, trace, None)
        trace.ok("parameters", "RoleArn, RoleSessionName, WebIdentityToken, DurationSeconds well-formed")
    try:
        result = asyncio.run(assume_role_with_web_identity(ctx, params, trace))
    except errors.AWSError as exc:
        if trace.failed is None:
            trace.fail("request", exc.message, cause="other")
        return Diagnosis("error", exc, trace, None)
    return Diagnosis("success", None, trace, result)


def _parameter_cause(message: str) -> str:
    if "'roleSessionName'" in message:
        return "session-name-invalid"
    if "'roleArn'" in message:
        return "role-arn-invalid"
    return "other"
