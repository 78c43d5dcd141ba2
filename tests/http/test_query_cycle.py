"""Query calls answered on the connection (http/query_cycle.py) beside uvicorn's ASGI cycle, over raw TLS.

``POST /`` with a small ``Content-Length`` is answered by ``QueryCycle``; every other request
(chunked bodies, ``Expect: 100-continue``, other routes) by uvicorn's cycle. These tests speak
HTTP/1.1 by hand so that both kinds can share one connection, pipelined, and check what only the
wire shows: order, framing, keep-alive and close, a client that leaves mid-body.
"""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import time
from pathlib import Path

import pytest

from conftest import Server, rb, start_server, stop_server

GCI = b"Action=GetCallerIdentity&Version=2011-06-15"  # unsigned: a 403 MissingAuthenticationToken
BAD_ACTION = b"Action=NoSuchThing&Version=2011-06-15"  # a 400 InvalidAction


def _connect(server: Server) -> ssl.SSLSocket:
    host, port = server.url.removeprefix("https://").split(":")
    ctx = ssl.create_default_context(cafile=server.ca_bundle)
    return ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=10), server_hostname=host)


def _post(body: bytes, *, extra: bytes = b"", version: bytes = b"1.1") -> bytes:
    return (b"POST / HTTP/" + version + b"\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def _chunked(body: bytes) -> bytes:
    half = len(body) // 2
    return (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (half, body[:half], len(body) - half, body[half:]))


class Responses:
    """Reads HTTP/1.1 responses (Content-Length framed) off one connection, in order."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.sock, self.buf = sock, b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def next(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buf:
            assert self._fill(), f"connection closed before a response: {self.buf!r}"
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, value = line.split(":", 1)
            assert name.lower() not in headers, f"header {name} twice"
            headers[name.lower()] = value.strip()
        if status == 100:
            return status, headers, b""
        length = int(headers["content-length"])
        while len(self.buf) < length:
            assert self._fill(), "connection closed mid-body"
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body

    def closed(self, within: float = 5.0) -> bool:
        """Whether the server closes the connection (EOF) within ``within`` seconds, with nothing more sent."""
        self.sock.settimeout(within)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return False
        except (ssl.SSLError, OSError):
            return True
        assert not data, f"unexpected bytes: {data!r}"
        return True


def _code(body: bytes) -> str:
    found = re.search(rb"<Code>([^<]+)</Code>", body)
    return found.group(1).decode() if found else ""


def test_pipelined_calls_on_both_paths_are_answered_in_order(server: Server) -> None:
    sock = _connect(server)
    stream = b"".join([_post(GCI), b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", _post(BAD_ACTION), _chunked(GCI),
                       _post(BAD_ACTION)])
    sock.sendall(stream)  # all at once: each waits for the one before it
    answers = Responses(sock)
    got = [answers.next() for _ in range(5)]
    assert [s for s, _, _ in got] == [403, 200, 400, 403, 400]
    assert [_code(b) for _, _, b in got] == ["MissingAuthenticationToken", "", "InvalidAction",
                                              "MissingAuthenticationToken", "InvalidAction"]
    assert json.loads(got[1][2]) == {"status": "ok"}
    ids = [h["x-amzn-requestid"] for s, h, _ in got if s != 200]
    assert len(set(ids)) == 4
    sock.sendall(_post(GCI))  # the connection is still good
    assert answers.next()[0] == 403
    sock.close()


def test_the_fast_and_the_asgi_path_give_the_same_answer(server: Server) -> None:
    sock = _connect(server)
    sock.sendall(_post(BAD_ACTION) + _chunked(BAD_ACTION))
    answers = Responses(sock)
    (s1, h1, b1), (s2, h2, b2) = answers.next(), answers.next()
    assert s1 == s2 == 400
    assert set(h1) == set(h2) >= {"content-type", "content-length", "x-amzn-requestid", "date"}
    assert h1["content-type"] == h2["content-type"] == "text/xml; charset=utf-8"
    assert b1.replace(h1["x-amzn-requestid"].encode(), b"") == b2.replace(h2["x-amzn-requestid"].encode(), b"")
    sock.close()


def test_a_body_in_pieces_and_expect_100_continue(server: Server) -> None:
    sock = _connect(server)
    answers = Responses(sock)
    request = _post(GCI)
    head, body = request.split(b"\r\n\r\n", 1)
    sock.sendall(head + b"\r\n\r\n")
    for i in range(0, len(body), 5):  # the body a few bytes at a time
        time.sleep(0.01)
        sock.sendall(body[i:i + 5])
    assert answers.next()[0] == 403
    sock.sendall(head + b"\r\nExpect: 100-continue\r\n\r\n")
    assert answers.next()[0] == 100  # the server asks for the body, as uvicorn's cycle does
    sock.sendall(body)
    assert answers.next()[0] == 403
    sock.close()


@pytest.mark.parametrize(("request_bytes", "why"), [
    (_post(GCI, version=b"1.0"), "HTTP/1.0"),
    (_post(GCI, extra=b"Connection: close\r\n"), "Connection: close"),
])
def test_the_connection_closes_when_the_client_asks(server: Server, request_bytes: bytes, why: str) -> None:
    sock = _connect(server)
    sock.sendall(request_bytes)
    answers = Responses(sock)
    status, headers, _ = answers.next()
    assert status == 403, why
    assert headers.get("connection") == "close", why
    assert answers.closed(), why
    sock.close()


def test_a_kept_alive_connection_is_closed_after_the_keep_alive_timeout(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", tmp_path / "home", env={**os.environ, "ROLEBRIDGE_KEEP_ALIVE_TIMEOUT": "1"})
    try:
        sock = _connect(srv)
        answers = Responses(sock)
        for _ in range(3):  # a connection used more often than the timeout is not cut
            time.sleep(0.6)
            sock.sendall(_post(GCI))
            assert answers.next()[0] == 403
        answered = time.monotonic()
        assert answers.closed(within=10)
        assert 0.9 < time.monotonic() - answered < 5  # idle for the timeout (1 s) after its last answer
        sock.close()
    finally:
        stop_server(srv)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_client_that_leaves_mid_body_is_recorded_as_incomplete(fresh_server: Server, chunked: bool) -> None:
    sock = _connect(fresh_server)
    if chunked:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n10\r\nAction=GetCal")
    else:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: 100\r\n\r\nAction=GetCal")
    time.sleep(0.3)
    sock.close()
    deadline = time.monotonic() + 10
    while True:
        found = json.loads(rb("audit", "--json", data_dir=fresh_server.data_dir).stdout)
        incomplete = [e for e in found if e.get("errorCode") == "IncompleteRequest"]
        if incomplete or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(incomplete) == 1, found
    # and the server still answers
    again = _connect(fresh_server)
    again.sendall(_post(GCI))
    assert Responses(again).next()[0] == 403
    again.close()
