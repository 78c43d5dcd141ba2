"""STS GetSessionToken: temporary credentials for the holder of long-term keys, as AWS issues them.

Only long-term keys may call it (``AccessDenied`` "Cannot call GetSessionToken with session
credentials" otherwise). The credentials keep the caller's identity (the account root here, so
GetCallerIdentity still says ``arn:aws:iam::ACCOUNT:root``); for the account root they last at most
one hour, longer requests are silently shortened, as AWS documents. With no MFA device in this
system the credentials cannot call IAM, and in STS only AssumeRole and GetCallerIdentity (enforced
in ``iam/authorize.py``); an AssumeRole made with them counts as role chaining.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rolebridge import errors
from rolebridge.context import CallContext
from rolebridge.iam.registry import operation
from rolebridge.sts import credentials

ROOT_MAX_DURATION = 3600
ROOT_DEFAULT_DURATION = 3600


@operation("sts", "GetSessionToken", action=None)
def get_session_token(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    caller = ctx.require_caller()
    if caller.is_temporary:
        raise errors.AccessDenied("Cannot call GetSessionToken with session credentials")
    if p.get("SerialNumber") or p.get("TokenCode"):
        raise errors.AccessDenied("MultiFactorAuthentication failed with invalid MFA one time pass code.")
    duration = int(p.get("DurationSeconds") or ROOT_DEFAULT_DURATION)
    if caller.is_root:
        duration = min(duration, ROOT_MAX_DURATION)
    expiration = ctx.now + duration
    session = replace(caller, expiration=expiration, session={"gst": True})
    issued, _ = credentials.issue(ctx.services.server_key, session, expiration=expiration)
    return {"Credentials": issued.shape(ctx.services.to_datetime)}
