"""The AWS Query endpoint (``POST /``): decode, authenticate, authorize, dispatch, serialize.

No business logic: handlers live in ``iam/`` and ``sts/`` and are found in ``iam.registry``.
"""

from __future__ import annotations

import inspect
import logging
import uuid
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from rolebridge import errors
from rolebridge.context import CallContext
from rolebridge.http.authn import authenticate
from rolebridge.http.errors import error_response
from rolebridge.http.models import service_for
from rolebridge.http.query import MAX_QUERY_BYTES, decode_params, parse_query
from rolebridge.http.sigv4 import parse_sigv4
from rolebridge.http.xml import serialize_result
from rolebridge.iam.authorize import authorize
from rolebridge.iam.registry import OPERATIONS
from rolebridge.services import Services

MAX_BODY = MAX_QUERY_BYTES
log = logging.getLogger("rolebridge.http")


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise errors.ValidationError("Request body is too large.")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise errors.ValidationError("Request body is too large.")
            chunks.append(chunk)
    except ClientDisconnect as exc:  # the client went away mid-body: nothing to answer, nothing to log
        raise errors.IncompleteRequest("The client closed the connection before the request body was read.") from exc
    return b"".join(chunks)


def _guess_service(flat: dict[str, str] | None) -> str:
    if flat and flat.get("Version") == "2010-05-08":
        return "iam"
    return "sts"


async def handle_query(request: Request, services: Services) -> Response:
    request_id = str(uuid.uuid4())
    now = services.clock()
    service, flat = "sts", None
    ctx: CallContext | None = None
    params: dict[str, Any] | None = None
    action = ""
    scope = request.scope
    services.lookups.request_scope()
    # the URL and query objects are built only when there is a query string (rare for POST)
    raw_query = scope.get("query_string", b"")
    query_string = request.url.query if raw_query else ""
    try:
        body = await read_body(request)
        flat = parse_query(body, query_string.encode())
        service = _guess_service(flat)
        action = flat.get("Action") or ""
        service = service_for(flat.get("Action"), flat.get("Version"))
        op = OPERATIONS.get((service, action))
        if op is None:
            raise errors.InvalidAction(f"Could not find operation {action} for version {flat.get('Version')}")
        params = decode_params(service, action, flat)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query_params = dict(request.query_params) if raw_query else {}
        creds = parse_sigv4(request.method, headers, query_params)
        caller = None
        if op.signed:
            if creds is None:
                raise errors.MissingAuthenticationToken()
            token = headers.get("x-amz-security-token") or query_params.get("X-Amz-Security-Token")
            caller = authenticate(services, creds, service=service, method=request.method,
                                  path=request.scope.get("raw_path", b"/").decode("latin-1").split("?")[0]
                                  or "/", query_string=query_string, headers=headers,
                                  body=body, now=now, security_token=token)
        client = request.client
        ctx = CallContext(services=services, caller=caller, now=now, request_id=request_id,
                          source_ip=client.host if client else "127.0.0.1",
                          user_agent=headers.get("user-agent", ""), secure=scope.get("scheme", "http") == "https")
        authorize(ctx, op, params)
        result: Any = op.handler(ctx, params)
        if inspect.isawaitable(result):
            result = await result
        payload = serialize_result(service, action, result, request_id)
    except Exception as exc:
        return await _refuse(services, exc, ctx=ctx, service=service, action=action,
                             params=params if params is not None else flat, request=request,
                             request_id=request_id)
    try:  # the answer waits for its audit event to be committed (group commit, see audit/writer.py)
        await services.record_async(ctx, service, action, params, result=result, request=request,
                                    request_id=request_id)
    except Exception as exc:
        log.error("audit write failed for request %s", request_id, exc_info=exc)
        return error_response(service, errors.ServiceFailure("The audit trail is unavailable."), request_id)
    return Response(payload, media_type="text/xml", headers={"x-amzn-RequestId": request_id})


async def _refuse(services: Services, exc: Exception, *, ctx: CallContext | None, service: str, action: str,
                  params: Any, request: Request, request_id: str) -> Response:
    """Record a refused or failed call, then answer with its error (or a failure if it cannot be recorded)."""
    try:
        await services.record_async(ctx, service, action, params, error=exc, request=request,
                                    request_id=request_id)
    except Exception as audit_exc:
        log.error("audit write failed for request %s", request_id, exc_info=audit_exc)
        exc = errors.ServiceFailure("The audit trail is unavailable.")
    return error_response(service, exc, request_id)
