"""uvicorn's httptools protocol with read deadlines, so slow clients cannot hold connections forever.

uvicorn bounds only the idle time between requests (``timeout_keep_alive``). A client that opens a
connection and sends nothing, sends its headers a byte at a time, or stops half-way through its
body keeps the connection, and a few thousand such clients fill ``limit_concurrency`` and lock
everyone else out (seen: 4,200 half-open requests from one process in 7 s). Here:

- a connection's TLS handshake must finish within ``HEADER_TIMEOUT`` (``http/serving.py``: this
  protocol exists only once it has);
- a request's headers must be complete within ``HEADER_TIMEOUT`` of the connection opening or of
  the previous response (a total, so trickling bytes does not extend it);
- a request body must not pause for longer than ``BODY_IDLE_TIMEOUT`` (measured between reads
  while we are reading: a handler that is slow to consume, with reading paused, is not the client's
  fault).

A connection past its deadline is aborted; so are connections with nothing left to answer when the
server stops (``shutdown``).

It also reports the connection's TLS parameters in each request's scope as the ASGI TLS extension
(``scope["extensions"]["tls"]``, asgiref's "TLS Extension": ``tls_version`` 0x0303 for TLS 1.2,
0x0304 for TLS 1.3, ...), read from the connection's ``ssl_object``; uvicorn itself does not set it.
S3's ``s3:TlsVersion`` condition key comes from there (``s3/authz.py``). Over the h11 fallback the
extension is absent, and so is the key. Both deadlines are 30 s (``ROLEBRIDGE_HEADER_TIMEOUT`` and
``ROLEBRIDGE_BODY_IDLE_TIMEOUT`` override them), as is the keep-alive idle time after an answer
(``ROLEBRIDGE_KEEP_ALIVE_TIMEOUT``, given to uvicorn as ``timeout_keep_alive`` and kept lazily here
too). Passed to uvicorn as ``Config(http=...)``; it must be importable by name for ``--workers N``.

``POST /`` Query calls with a small body are answered without uvicorn's ASGI cycle
(``http/query_cycle.py`` says why); every other request takes uvicorn's.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import ssl
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from rolebridge.http.query_api import QueryEndpoint, Wire
from rolebridge.http.query_cycle import MAX_FAST_BODY, QueryCycle


def _seconds(name: str, default: float) -> float:
    """A deadline from the environment (operators, tests), within 0.1 s .. 1 h; else the default."""
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return min(max(value, 0.1), 3600.0) if value == value else default  # NaN -> default


HEADER_TIMEOUT = _seconds("ROLEBRIDGE_HEADER_TIMEOUT", 30.0)
BODY_IDLE_TIMEOUT = _seconds("ROLEBRIDGE_BODY_IDLE_TIMEOUT", 30.0)
KEEP_ALIVE_TIMEOUT = _seconds("ROLEBRIDGE_KEEP_ALIVE_TIMEOUT", 30.0)


_TLS_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def tls_extension(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> dict[str, Any] | None:
    """The ASGI TLS extension for a connection (None when it is not TLS or the version is unknown)."""
    if ssl_object is None:
        return None
    version = _TLS_VERSIONS.get(ssl_object.version() or "")
    if version is None:
        return None
    return {"server_cert": None, "client_cert_chain": [], "client_cert_name": None, "client_cert_error": None,
            "tls_version": version, "cipher_suite": None}


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    """Deadlines are lazy: arming one only records when it falls, and one timer per connection
    looks at it when it fires, then sleeps again for whatever time is left. Arming a real timer at
    every step of every request (three ``call_later`` and three cancels) cost ~8 µs of a ~45 µs
    request on the floor app; a busy connection now meets its timer about once per timeout."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: float | None = None  # loop time past which the connection is aborted
        self._idle_until: float | None = None  # kept alive with nothing asked: closed at this loop time
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0  # when ``_timer`` fires (loop time)
        self._in_body = False
        self._in_message = False  # a request has begun arriving and is not complete yet
        self._stopping = False
        self._tls: dict[str, Any] | None = None
        # Query calls answered without uvicorn's ASGI cycle (http/query_cycle.py), when the app is ours
        self._endpoint = self.app if isinstance(self.app, QueryEndpoint) else None
        self._fast_pending: QueryCycle | None = None  # a fast call waiting for the rest of its body
        self._reset_context = bool(getattr(self.config, "reset_contextvars", False))

    # -- deadlines ---------------------------------------------------------------------------------
    def _arm(self, seconds: float) -> None:
        deadline = self.loop.time() + seconds
        self._deadline = deadline
        self._wake_by(deadline)

    def _wake_by(self, when: float) -> None:
        if self._timer is not None and self._timer_at <= when:
            return  # it fires first and will sleep again until what is due
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = self.loop.call_at(when, self._check), when

    def _disarm(self) -> None:
        self._deadline = None  # a pending timer finds nothing to do

    def _cancel_timer(self) -> None:
        self._deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        self._timer = None
        now = self.loop.time()
        idle_until = self._idle_until
        if idle_until is not None and idle_until <= now:  # uvicorn's keep-alive timeout: a graceful close
            self._idle_until = idle_until = None
            if self.transport is not None and not self.transport.is_closing():
                self.transport.close()
        if self._deadline is None:
            return
        if self._deadline > now:
            self._wake_by(self._deadline if idle_until is None else min(idle_until, self._deadline))
            return
        self._expired()

    def _expired(self) -> None:
        self._deadline = None
        if self._in_body and self.flow is not None and self.flow.read_paused:
            self._arm(BODY_IDLE_TIMEOUT)  # we stopped reading, not the client: wait for the handler
            return
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()

    # -- uvicorn's protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._tls = tls_extension(transport.get_extra_info("ssl_object"))
        self._arm(HEADER_TIMEOUT)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        super().connection_lost(exc)
        pending, self._fast_pending = self._fast_pending, None
        if pending is not None:  # its body will not come: answered (to no one) and recorded as incomplete
            self._start(pending)

    def on_message_begin(self) -> None:
        self._idle_until = None
        self._in_message = True
        super().on_message_begin()
        if self._tls is not None:
            self.scope["extensions"] = {"tls": self._tls}  # type: ignore[typeddict-unknown-key]
        if self._deadline is None:  # a pipelined or kept-alive request: its own header deadline
            self._arm(HEADER_TIMEOUT)

    def on_headers_complete(self) -> None:
        if self._endpoint is None or not self._fast_query():
            super().on_headers_complete()
        self._in_body = True
        self._arm(BODY_IDLE_TIMEOUT)

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if type(cycle) is QueryCycle:
            cycle.body.append(body)  # at most MAX_FAST_BODY: llhttp holds the body to its Content-Length
        else:
            super().on_body(body)
        self._arm(BODY_IDLE_TIMEOUT)

    def on_message_complete(self) -> None:
        cycle = self.cycle
        if type(cycle) is QueryCycle:
            cycle.body_complete()
            if self._fast_pending is cycle:
                self._fast_pending = None
                self._start(cycle)
        else:
            super().on_message_complete()
        self._in_body = self._in_message = False
        self._disarm()

    # -- Query calls without the ASGI cycle (http/query_cycle.py) ----------------------------------
    def _fast_query(self) -> bool:
        """Take this request as a ``QueryCycle`` if it is a plain Query call; else uvicorn's path does.

        The scope gets what uvicorn's ``on_headers_complete`` would give it, so the endpoint's own
        ``takes`` decides, as it does on the ASGI path.
        """
        parser = self.parser
        if self.url != b"/" or self.expect_100_continue or self.root_path or parser.get_method() != b"POST" \
                or parser.should_upgrade():
            return False
        length = None
        for name, value in self.headers:
            if name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                return False
        if length is None or len(length) > 6 or not length.isdigit() or int(length) > MAX_FAST_BODY:
            return False
        limit = self.limit_concurrency
        if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
            return False  # uvicorn's path answers 503
        http_version = parser.get_http_version()
        scope = self.scope
        scope["method"] = "POST"
        if http_version != "1.1":
            scope["http_version"] = http_version
        scope["path"], scope["raw_path"], scope["query_string"] = "/", b"/", b""
        endpoint = self._endpoint
        assert endpoint is not None
        if not endpoint.takes(scope):
            return False
        cycle = QueryCycle(endpoint, Wire.from_scope(scope), transport=self.transport, flow=self.flow,
                           default_headers=self.server_state.default_headers,
                           keep_alive=http_version != "1.0" and parser.should_keep_alive(),
                           on_response=self.on_response_complete, loop=self.loop)
        previous, self.cycle = self.cycle, cycle  # type: ignore[assignment]
        if previous is None or previous.response_complete:
            self._fast_pending = cycle  # started once its body is in
        else:  # pipelined behind a call still being answered: uvicorn's queue starts it in turn
            self.flow.pause_reading()
            self.pipeline.appendleft((cycle, None))  # type: ignore[arg-type]
        return True

    def _start(self, cycle: Any, app: Any = None) -> None:
        """Run a cycle (ours or uvicorn's) as uvicorn does: a task the server waits for when it stops."""
        if self._reset_context:  # uvicorn's opt-in: each request in a fresh context
            task = self.loop.create_task(cycle.run_asgi(app), context=contextvars.Context())
        else:
            task = self.loop.create_task(cycle.run_asgi(app))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    def on_response_complete(self) -> None:
        """uvicorn's, with its keep-alive timeout kept lazily too (it armed and cancelled a timer per
        request): an idle connection is closed ``timeout_keep_alive`` after its last answer, and
        aborted ``HEADER_TIMEOUT`` later if that close does not finish."""
        self.server_state.total_requests += 1
        transport = self.transport
        if self._stopping:  # answered during a shutdown: nothing more will come on this connection
            transport.abort()
            return
        if transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:  # a pipelined request waited for this answer
            cycle, app = self.pipeline.pop()
            self._start(cycle, app)
        elif not self._in_message:  # (a request already arriving keeps its own deadlines, and is not idle)
            self._arm(HEADER_TIMEOUT + self.timeout_keep_alive)  # keep-alive idle, then the next headers
            self._idle_until = idle_until = self.loop.time() + self.timeout_keep_alive
            self._wake_by(idle_until)

    def shutdown(self) -> None:
        """A stopping server drops what it will not answer at once, and what it has answered.

        uvicorn closes an idle connection with ``transport.close()``; over TLS that sends close_notify
        and waits for the client's, which an idle client (a boto3 pool, the control socket's preflight
        client) never sends, so every stop took the whole graceful timeout. Idle connections, clients
        still sending a body (their handler sees a disconnect, not a cancellation), and connections
        whose answer completes during the shutdown are aborted; requests being handled finish.
        """
        self._stopping = True
        cycle = self.cycle
        if cycle is None or cycle.response_complete or (cycle.more_body and not cycle.response_started):
            self.transport.abort()
            return
        super().shutdown()
