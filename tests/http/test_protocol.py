"""http/protocol.py driven in-process: which path a request takes, and the states the network makes hard to time.

The protocol runs with the real app (``create_app`` on a fresh data dir, its audit writer included);
only the connection is a stand-in (``Transport``): it records what the protocol writes and whether it
closed, paused or aborted, as uvicorn's own tests do. tests/http/test_query_cycle.py covers the same
paths over real TLS sockets.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from rolebridge.bootstrap import open_services
from rolebridge.http.app import create_app
from rolebridge.http.protocol import DeadlineHttpToolsProtocol
from rolebridge.http.query_cycle import QueryCycle

GCI = b"Action=GetCallerIdentity&Version=2011-06-15"


def _post(body: bytes) -> bytes:
    return (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body)


class Transport(asyncio.Transport):
    """The connection, as far as the protocol uses it."""

    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()
        self.closed = self.aborted = self.reading_paused = False

    def write(self, data: Any) -> None:
        self.out += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8443), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None:
        self.reading_paused = True

    def resume_reading(self) -> None:
        self.reading_paused = False

    def answers(self) -> list[int]:
        """The status of each answer written so far (no body here holds a status line)."""
        return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", bytes(self.out))]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return create_app(open_services(str(tmp_path_factory.mktemp("protocol") / "data")))


async def _until(condition: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


def _connect(app: Any, **config: Any) -> tuple[DeadlineHttpToolsProtocol, Transport]:
    cfg = Config(app=app, http=DeadlineHttpToolsProtocol, lifespan="off", proxy_headers=False, access_log=False,
                 **config)
    cfg.load()
    protocol = DeadlineHttpToolsProtocol(config=cfg, server_state=ServerState(), app_state={},
                                         _loop=asyncio.get_running_loop())
    transport = Transport()
    protocol.connection_made(transport)
    return protocol, transport


def test_uvicorn_still_has_the_shape_the_fast_path_relies_on() -> None:
    """The fast path stands in for uvicorn's cycle and replaces on_response_complete: what it reads must exist."""
    for name in ("on_response_complete", "_unset_keepalive_if_required", "send_400_response", "on_message_begin",
                 "on_headers_complete", "on_body", "on_message_complete", "shutdown", "pause_writing"):
        assert callable(getattr(HttpToolsProtocol, name, None)), name
    assert callable(getattr(RequestResponseCycle, "run_asgi", None))
    attributes = {"cycle", "pipeline", "tasks", "connections", "server_state", "timeout_keep_alive_task",
                  "timeout_keep_alive", "limit_concurrency", "root_path", "expect_100_continue", "headers", "url"}
    cfg = Config(app=lambda *_: None, lifespan="off")
    cfg.load()

    async def made() -> HttpToolsProtocol:
        protocol = HttpToolsProtocol(config=cfg, server_state=ServerState(), app_state={},
                                     _loop=asyncio.get_running_loop())
        protocol.connection_made(Transport())
        protocol.on_message_begin()
        return protocol

    protocol = asyncio.run(made())
    assert attributes <= set(vars(protocol)), attributes - set(vars(protocol))
    assert isinstance(protocol.pipeline, deque)


def test_a_query_call_takes_the_fast_path_and_other_requests_uvicorns(app: Any) -> None:
    async def run() -> None:
        protocol, transport = _connect(app)
        protocol.data_received(_post(GCI))
        assert type(protocol.cycle) is QueryCycle
        await _until(lambda: transport.answers() == [403])
        protocol.data_received(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert type(protocol.cycle) is RequestResponseCycle
        await _until(lambda: transport.answers() == [403, 200])
        protocol.data_received(_post(GCI).replace(b"Content-Length: ", b"Expect: 100-continue\r\nContent-Length: "))
        assert type(protocol.cycle) is RequestResponseCycle  # uvicorn's cycle says "100 Continue"
        await _until(lambda: transport.answers() == [403, 200, 100, 403])
        huge = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"0" * 5000 + b"43\r\n\r\n" + GCI
        protocol.data_received(huge)  # a Content-Length int() would refuse: not ours to parse
        assert type(protocol.cycle) is RequestResponseCycle
        protocol.connection_lost(None)

    asyncio.run(run())


def test_a_request_arriving_when_an_answer_completes_is_not_cut_as_idle(app: Any) -> None:
    """The keep-alive timeout counts only while nothing is arriving (uvicorn's data_received cancels it)."""
    async def run() -> None:
        protocol, transport = _connect(app, timeout_keep_alive=0.2)
        second = _post(GCI)
        protocol.data_received(_post(GCI) + second[:20])  # the next request's first bytes, pipelined
        await _until(lambda: transport.answers() == [403])
        await asyncio.sleep(0.6)  # past the keep-alive timeout: the connection is not idle
        assert not transport.closed
        protocol.data_received(second[20:])
        await _until(lambda: transport.answers() == [403, 403])
        await asyncio.sleep(0.6)  # now it is idle, and closed (gracefully)
        assert transport.closed and not transport.aborted
        protocol.connection_lost(None)

    asyncio.run(run())


def test_an_answer_waits_while_the_client_is_not_reading(app: Any) -> None:
    async def run() -> None:
        protocol, transport = _connect(app)
        protocol.pause_writing()  # the transport's buffer is full
        protocol.data_received(_post(GCI))
        await asyncio.sleep(0.3)
        assert transport.answers() == []
        protocol.resume_writing()
        await _until(lambda: transport.answers() == [403])
        protocol.connection_lost(None)

    asyncio.run(run())


def test_shutdown_drops_a_call_still_sending_its_body_and_lets_an_answered_one_close(app: Any) -> None:
    async def run() -> None:
        protocol, transport = _connect(app)
        protocol.data_received(_post(GCI)[:-5])
        assert type(protocol.cycle) is QueryCycle
        protocol.shutdown()
        assert transport.aborted  # it will not be answered
        protocol.connection_lost(None)
        await asyncio.sleep(0.1)
        assert transport.answers() == []

    asyncio.run(run())
