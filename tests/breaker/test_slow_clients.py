"""Slow clients cannot hold connections: read deadlines for headers and bodies (http/protocol.py).

Seen by the breaker: connections that sent half a request were held for over 90 s, and 4,200 of
them from one process filled the server's connection limit, locking every other client out.
"""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

import pytest

from conftest import start_server, stop_server


def _connect(server) -> ssl.SSLSocket:
    host, port = server.url.removeprefix("https://").split(":")
    ctx = ssl.create_default_context(cafile=server.ca_bundle)
    return ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=10), server_hostname=host)


def _assert_served(server) -> None:
    """An unsigned GetCallerIdentity gets its answer (a 403: it needs a signature)."""
    ok = _connect(server)
    body = b"Action=GetCallerIdentity&Version=2011-06-15"
    ok.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    assert ok.recv(100).startswith(b"HTTP/1.1 403")
    ok.close()


def _seconds_until_closed(sock: ssl.SSLSocket, limit: float) -> float | None:
    start = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return None
    except OSError:
        pass
    return time.monotonic() - start


def test_silent_half_sent_and_stalled_requests_are_dropped(tmp_path: Path) -> None:
    import os

    env = {"ROLEBRIDGE_HEADER_TIMEOUT": "1.5", "ROLEBRIDGE_BODY_IDLE_TIMEOUT": "1.5"}
    srv = start_server(tmp_path / "data", tmp_path / "home", env={**os.environ, **env})
    try:
        silent = _connect(srv)
        trickle = _connect(srv)
        stalled = _connect(srv)
        stalled.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                        b"Content-Length: 100\r\n\r\nAction=Get")
        # headers a byte every 0.1 s, far faster than the deadline: it is a total, so the connection is
        # still cut (an idle timer, reset by every byte, would let this run for the whole 5 s)
        started = time.monotonic()
        trickle.settimeout(0.5)
        cut_after = None
        for byte in b"POST / HTTP/1.1\r\nHost: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n":
            try:
                trickle.sendall(bytes([byte]))
            except OSError:
                cut_after = time.monotonic() - started
                break
            time.sleep(0.1)
        assert cut_after is not None and cut_after < 4, f"trickled headers were not cut ({cut_after})"
        for sock in (silent, trickle, stalled):
            waited = _seconds_until_closed(sock, 8)
            assert waited is not None, "the server kept a slow connection open"
        _assert_served(srv)  # a well-behaved client is served as ever
    finally:
        stop_server(srv)
    assert "Traceback" not in (tmp_path / "data" / "server.log").read_text()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_tls_handshake_that_never_finishes_is_dropped_at_the_header_deadline(tmp_path: Path, workers: str) -> None:
    """Seen by the breaker: a TCP connection that sent nothing, or half a ClientHello, was held for
    asyncio's default 60 s (the HTTP deadlines start after the handshake), and ~20,000 of them locked
    every other client out. The handshake now has the header deadline (http/serving.py), in the
    server process and in each worker."""
    import os

    env = {"ROLEBRIDGE_HEADER_TIMEOUT": "1.5"}
    srv = start_server(tmp_path / "data", tmp_path / "home", "--workers", workers, env={**os.environ, **env})
    try:
        host, port = srv.url.removeprefix("https://").split(":")
        silent = socket.create_connection((host, int(port)), timeout=10)
        half_hello = socket.create_connection((host, int(port)), timeout=10)
        half_hello.sendall(bytes.fromhex("16030102000100010003 03".replace(" ", "")))  # a ClientHello cut short
        for raw in (silent, half_hello):
            start = time.monotonic()
            raw.settimeout(15)
            try:
                while raw.recv(4096):
                    pass
            except TimeoutError:
                raise AssertionError("the server kept a connection whose handshake never finished") from None
            except OSError:
                pass  # reset: closed too
            assert time.monotonic() - start < 8, "the handshake was not cut at its deadline"
            raw.close()
        _assert_served(srv)  # a real client still gets through
    finally:
        stop_server(srv)
