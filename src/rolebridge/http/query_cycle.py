"""A Query call (``POST /``) answered on its connection, in place of uvicorn's ASGI request cycle.

Why by hand: every STS and IAM call is a small ``POST /``, and uvicorn's per-request machinery
around the app (a ``RequestResponseCycle`` with its ``asyncio.Event``, the ``receive``/``send``
message dicts, a regular-expression check of every response header, the idle timer armed and
cancelled per request) cost about two thirds of the floor app's CPU per request: a bare
httptools protocol answered the floor's bytes at ~105,000 req/s on one core where uvicorn answered
~31,000 (both uvloop + TLS, wrk -c64, measured side by side). ``QueryCycle`` is the part of that
cycle a Query call needs: the body, collected by the connection's protocol
(``http/protocol.py``), goes to ``answer_query`` (the same call the ASGI path makes) and the answer
is written as one block. Server CPU per call, one pinned worker at 64 connections, alternated with
the ASGI path: AssumeRoleWithWebIdentity 190 -> 181 µs, signed GetCallerIdentity 111 -> 99 µs.

It stands in for uvicorn's cycle object in the protocol (the same attributes uvicorn's protocol
reads: ``response_complete``, ``disconnected``, ``keep_alive``, ``message_event``...), so
pipelining, shutdown, the concurrency limit and the task bookkeeping that waits for calls in flight
at shutdown stay uvicorn's. Only calls whose whole body is announced by a ``Content-Length`` of at
most ``MAX_FAST_BODY`` come here (``DeadlineHttpToolsProtocol._fast_query``, which asks
``QueryEndpoint.takes``); anything else (chunked bodies, ``Expect: 100-continue``, larger bodies, S3)
takes the ASGI path, which has the flow control for it. Written against uvicorn 0.55's protocol
(``pyproject.toml`` holds the tested range; ``tests/http/test_protocol.py`` checks the shape).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from rolebridge import errors

if TYPE_CHECKING:
    from rolebridge.http.query_api import QueryEndpoint, Wire

log = logging.getLogger("rolebridge.http")

MAX_FAST_BODY = 65536  # uvicorn's HIGH_WATER_LIMIT: below it, no read pausing is needed while collecting

class _Wake:
    """``message_event`` as uvicorn's protocol uses it (``set()`` on a disconnect): wakes a cycle
    waiting for the rest of its body."""

    __slots__ = ("cycle",)

    def __init__(self, cycle: QueryCycle) -> None:
        self.cycle = cycle

    def set(self) -> None:
        waiter = self.cycle.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class QueryCycle:
    """One Query call on a connection: its body as it arrives, then its answer written in one block."""

    __slots__ = ("body", "default_headers", "disconnected", "endpoint", "flow", "keep_alive", "loop",
                 "message_event", "more_body", "on_response", "response_complete", "response_started",
                 "transport", "waiter", "wire")

    def __init__(self, endpoint: QueryEndpoint, wire: Wire, *, transport: asyncio.Transport, flow: Any,
                 default_headers: list[tuple[bytes, bytes]], keep_alive: bool, on_response: Any,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.endpoint, self.wire, self.transport, self.flow = endpoint, wire, transport, flow
        self.default_headers, self.keep_alive = default_headers, keep_alive
        self.on_response, self.loop = on_response, loop
        self.body: list[bytes] = []
        self.more_body = True
        self.disconnected = False
        self.response_started = False
        self.response_complete = False
        self.waiter: asyncio.Future[None] | None = None
        self.message_event = _Wake(self)

    def body_complete(self) -> None:
        self.more_body = False
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def run_asgi(self, _app: Any = None) -> None:
        """Answer the call (the name and signature of uvicorn's cycle, so its pipeline can start it)."""
        try:
            if self.more_body and not self.disconnected:  # started before its body was in (pipelined)
                self.waiter = self.loop.create_future()
                await self.waiter
            body: bytes | Exception
            if self.more_body:  # the client went away mid-body: recorded like the ASGI path records it
                body = errors.IncompleteRequest("The client closed the connection before the request body was read.")
            else:
                body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
            answer = await self.endpoint.answer(self.wire, body)
            if self.disconnected:
                return
            if self.flow.write_paused:  # the client is not reading its answers: wait as uvicorn's send does
                await self.flow.drain()
                if self.disconnected:
                    return
            self.response_started = True
            keep_alive = self.keep_alive and not answer.close
            parts = self._head(answer.status, b"content-type: text/xml; charset=utf-8\r\nx-amzn-requestid: %s\r\n"
                               b"content-length: %d\r\n" % (answer.request_id.encode(), len(answer.body)))
            if not keep_alive:
                parts.append(b"connection: close\r\n")
            parts += (b"\r\n", answer.body)
            self.transport.write(b"".join(parts))
            self.response_complete = True
            if not keep_alive:
                self.transport.close()
            self.on_response()
        except BaseException as exc:
            # answer_query never raises, so this is a defect, or the task was cancelled (a shutdown past its
            # grace period): either way the connection ends, as uvicorn's cycle ends it
            log.error("Exception in the Query fast path", exc_info=exc)
            if not self.response_started and not self.disconnected:
                self.transport.write(b"".join(self._head(500, b"content-type: text/plain; charset=utf-8\r\n"
                                                         b"content-length: 21\r\nconnection: close\r\n\r\n"
                                                         b"Internal Server Error")))
            self.transport.close()
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        finally:
            self.on_response = _nothing

    def _head(self, status: int, fields: bytes) -> list[bytes]:
        """The status line, the server's default headers (date, server), then ``fields``."""
        parts = [STATUS_LINE[status]]
        for name, value in self.default_headers:
            parts += (name, b": ", value, b"\r\n")
        parts.append(fields)
        return parts


def _nothing() -> None:
    return None
