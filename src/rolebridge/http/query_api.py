"""The AWS Query endpoint (``POST /``): decode, authenticate, authorize, dispatch, serialize.

No business logic: handlers live in ``iam/`` and ``sts/`` and are found in ``iam.registry``.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import urllib.parse
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from rolebridge import errors
from rolebridge.context import CallContext
from rolebridge.http.authn import authenticate
from rolebridge.http.errors import error_payload
from rolebridge.http.models import service_for
from rolebridge.http.query import MAX_QUERY_BYTES, decode_params, parse_query
from rolebridge.http.sigv4 import parse_sigv4
from rolebridge.http.xml import serialize_result
from rolebridge.iam.authorize import authorize
from rolebridge.iam.registry import OPERATIONS
from rolebridge.randomness import uuid4
from rolebridge.services import Services

MAX_BODY = MAX_QUERY_BYTES
log = logging.getLogger("rolebridge.http")


@dataclass(frozen=True, slots=True)
class Client:
    host: str


@dataclass(slots=True)
class Wire:
    """What the endpoint reads from an HTTP request besides its body, taken from the ASGI scope.

    It offers the few members of a Starlette ``Request`` that the endpoint and the audit hook
    (``Services.record``) read, so the ``POST /`` fast path (``QueryEndpoint``) needs no Request.
    """

    scope: Scope
    method: str
    path: str
    query_string: str
    headers: dict[str, str]  # names lower-cased
    client: Client | None
    _query_params: dict[str, str] | None = None

    @classmethod
    def from_scope(cls, scope: Scope) -> Wire:
        raw_query = scope.get("query_string", b"")
        client = scope.get("client")
        return cls(scope=scope, method=scope.get("method", "GET"),
                   path=scope.get("raw_path", b"/").decode("latin-1").split("?")[0] or "/",
                   query_string=raw_query.decode("latin-1") if raw_query else "",
                   headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])},
                   client=Client(client[0]) if client else None)

    @property
    def query_params(self) -> dict[str, str]:
        """As Starlette's ``request.query_params`` read through ``dict()``: the last value of a name wins."""
        if self._query_params is None:
            self._query_params = (dict(urllib.parse.parse_qsl(self.query_string, keep_blank_values=True))
                                  if self.query_string else {})
        return self._query_params


async def receive_body(wire: Wire, receive: Receive, limit: int = MAX_BODY) -> bytes:
    """The request body from the ASGI channel, at most ``limit`` bytes."""
    declared = wire.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise errors.ValidationError("Request body is too large.")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":  # the client went away mid-body: nothing to answer
            raise errors.IncompleteRequest("The client closed the connection before the request body was read.")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise errors.ValidationError("Request body is too large.")
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _guess_service(flat: dict[str, str] | None) -> str:
    if flat and flat.get("Version") == "2010-05-08":
        return "iam"
    return "sts"


async def handle_query(request: Request, services: Services) -> Response:
    """The Starlette route (``GET /``, or ``POST /`` that ``QueryEndpoint`` passed on)."""
    wire = Wire.from_scope(request.scope)
    answer = await answer_query(services, wire, await _body_or_error(wire, request.receive))
    return Response(answer.body, status_code=answer.status,
                    headers={name.decode(): value.decode() for name, value in answer.headers()})


async def _body_or_error(wire: Wire, receive: Receive) -> bytes | Exception:
    try:
        return await receive_body(wire, receive)
    except Exception as exc:  # answered (and recorded) like any refused call
        return exc


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    request_id: str
    close: bool = False  # the request body was not read to its end: the connection cannot carry another

    def headers(self) -> list[tuple[bytes, bytes]]:
        out = [(b"content-length", str(len(self.body)).encode()), (b"content-type", b"text/xml; charset=utf-8"),
               (b"x-amzn-requestid", self.request_id.encode())]
        if self.close:
            out.append((b"connection", b"close"))
        return out


async def answer_query(services: Services, wire: Wire, body: bytes | Exception) -> Answer:
    """One Query call: decode, authenticate, authorize, dispatch, serialize, audit. Never raises.

    ``body`` is the request body, or the error met while reading it (recorded and answered like
    any refused call).
    """
    request_id = uuid4()
    now = services.clock()
    service, flat = "sts", None
    ctx: CallContext | None = None
    params: dict[str, Any] | None = None
    action = ""
    services.lookups.request_scope()
    query_string = wire.query_string
    try:
        if isinstance(body, Exception):
            raise body
        flat = parse_query(body, query_string.encode())
        service = _guess_service(flat)
        action = flat.get("Action") or ""
        service = service_for(flat.get("Action"), flat.get("Version"))
        op = OPERATIONS.get((service, action))
        if op is None:
            raise errors.InvalidAction(f"Could not find operation {action} for version {flat.get('Version')}")
        params = decode_params(service, action, flat)
        headers = wire.headers
        query_params = wire.query_params
        creds = parse_sigv4(wire.method, headers, query_params)
        caller = None
        if op.signed:
            if creds is None:
                raise errors.MissingAuthenticationToken()
            token = headers.get("x-amz-security-token") or query_params.get("X-Amz-Security-Token")
            caller = authenticate(services, creds, service=service, method=wire.method, path=wire.path,
                                  query_string=query_string, headers=headers, body=body, now=now,
                                  security_token=token)
        client = wire.client
        ctx = CallContext(services=services, caller=caller, now=now, request_id=request_id,
                          source_ip=client.host if client else "127.0.0.1",
                          user_agent=headers.get("user-agent", ""),
                          secure=wire.scope.get("scheme", "http") == "https")
        authorize(ctx, op, params)
        result: Any = op.handler(ctx, params)
        if inspect.isawaitable(result):
            result = await result
        payload = serialize_result(service, action, result, request_id)
    except Exception as exc:
        answer = await _refuse(services, exc, ctx=ctx, service=service, action=action,
                               params=params if params is not None else flat, wire=wire, request_id=request_id)
        return dataclasses.replace(answer, close=True) if isinstance(body, Exception) else answer
    try:  # the answer waits for its audit event to be committed (group commit, see audit/writer.py)
        await services.record_async(ctx, service, action, params, result=result, request=wire,
                                    request_id=request_id)
    except Exception as exc:
        log.error("audit write failed for request %s", request_id, exc_info=exc)
        return _error_answer(service, errors.ServiceFailure("The audit trail is unavailable."), request_id)
    return Answer(200, payload, request_id)


def _error_answer(service: str, exc: BaseException, request_id: str) -> Answer:
    status, payload = error_payload(service, exc, request_id)
    return Answer(status, payload, request_id)


async def _refuse(services: Services, exc: Exception, *, ctx: CallContext | None, service: str, action: str,
                  params: Any, wire: Wire, request_id: str) -> Answer:
    """Record a refused or failed call, then answer with its error (or a failure if it cannot be recorded)."""
    try:
        await services.record_async(ctx, service, action, params, error=exc, request=wire, request_id=request_id)
    except Exception as audit_exc:
        log.error("audit write failed for request %s", request_id, exc_info=audit_exc)
        exc = errors.ServiceFailure("The audit trail is unavailable.")
    return _error_answer(service, exc, request_id)


class QueryEndpoint:
    """ASGI middleware in front of the app: ``POST /`` Query calls answered without Starlette's stack.

    Every STS and IAM call is a ``POST /``; routing, middleware layers and the Request/Response
    objects were a fifth of such a call's CPU. The call itself is ``answer_query``, the same as the
    Starlette route runs, so both give identical answers. S3 requests (``is_s3``) and everything else
    go on to ``app``.
    """

    def __init__(self, app: ASGIApp, services: Services, is_s3: Callable[[Scope], bool]) -> None:
        self.app, self.services, self.is_s3 = app, services, is_s3

    def takes(self, scope: Scope) -> bool:
        """Whether a request is a Query call: ``POST /`` with no query string that is not S3's."""
        return not (scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") != "/"
                    or scope.get("raw_path", b"/") != b"/" or scope.get("query_string") or self.is_s3(scope))

    def answer(self, wire: Wire, body: bytes | Exception) -> Coroutine[Any, Any, Answer]:
        """The call's answer (``answer_query``); the protocol's fast path (``http/query_cycle.py``) calls it."""
        return answer_query(self.services, wire, body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.takes(scope):
            await self.app(scope, receive, send)
            return
        wire = Wire.from_scope(scope)
        answer = await answer_query(self.services, wire, await _body_or_error(wire, receive))
        await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers()})
        await send({"type": "http.response.body", "body": answer.body})
