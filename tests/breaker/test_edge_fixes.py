"""Regression tests for edge findings: strict session-token encoding, provider URL ports, explicit zero values,
server.json removed on a clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from rolebridge import errors
from rolebridge.store.server_key import SealError, ServerKey

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import rb, start_server


def test_sealed_values_have_one_spelling(tmp_path: Path) -> None:
    key = ServerKey.load(tmp_path)
    sealed = key.seal(b"secret", purpose=b"p")
    assert key.open(sealed, purpose=b"p") == b"secret"
    for respelled in (sealed + "==", sealed + "\n", sealed[:10] + "+" + sealed[11:], " " + sealed):
        with pytest.raises(SealError):
            key.open(respelled, purpose=b"p")


@pytest.mark.parametrize("url", ["https://e.example:99999/x", "https://e.example:0/x", "https://e.example:abc/x",
                                 "https://e .example/x"])
def test_provider_url_with_a_bad_port_is_refused(server, url: str) -> None:
    iam = server.client("iam", "964000000001")
    with pytest.raises(ClientError) as info:
        iam.create_open_id_connect_provider(Url=url, ClientIDList=["x"], ThumbprintList=["a" * 40])
    assert info.value.response["Error"]["Code"] == "ValidationError"


def test_explicit_zero_lifetime_and_empty_audience_are_refused_not_defaulted(server) -> None:
    server.cluster("edge", "964000000002")
    zero = rb("token", "--cluster", "edge", "--namespace", "dev", "--service-account", "sa", "--expires-in", "0",
              data_dir=server.data_dir, check=False)
    assert zero.returncode != 0 and "expires_in" in zero.stderr
    empty = rb("token", "--cluster", "edge", "--namespace", "dev", "--service-account", "sa", "--audience", "",
               data_dir=server.data_dir, check=False)
    assert empty.returncode != 0 and "audience" in empty.stderr
    run = rb("run", "--cluster", "edge", "--project", "p", "--environment", "dev", "--aws-role", "", "--", "true",
             data_dir=server.data_dir, check=False)
    assert run.returncode != 0 and "--aws-role is empty" in run.stderr


def test_clean_stop_removes_server_json(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", tmp_path / "home")
    assert (tmp_path / "data" / "server.json").exists()
    os.kill(srv.process.pid, signal.SIGTERM)
    srv.process.wait(timeout=15)
    deadline = time.monotonic() + 5
    while (tmp_path / "data" / "server.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (tmp_path / "data" / "server.json").exists()
    log = (tmp_path / "data" / "server.log").read_text()
    assert "rolebridge server on https://" in log
    assert json.dumps({}) == "{}"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_stop_after_a_refused_run_is_prompt(tmp_path: Path, workers: str) -> None:
    # A run's preflight leaves the control socket's kept-alive HTTPS connection to the server open; an idle
    # TLS connection held the graceful shutdown for 30 s (uvloop's close_notify timeout) until it was closed first.
    srv = start_server(tmp_path / "data", tmp_path / "home", "--workers", workers)
    srv.cluster("stop", "333333333333")
    run = rb("run", "--cluster", "stop", "--project", "p", "--environment", "dev", "--aws-role", "missing",
             "--", "true", data_dir=srv.data_dir, check=False)
    assert run.returncode != 0 and "role-missing" in run.stderr
    started = time.monotonic()
    os.kill(srv.process.pid, signal.SIGTERM)
    srv.process.wait(timeout=15)
    assert time.monotonic() - started < 5
    assert not (tmp_path / "data" / "server.json").exists()
    assert not (tmp_path / "data" / "run.sock").exists()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_stop_does_not_wait_for_idle_keep_alive_clients(tmp_path: Path, workers: str) -> None:
    # An idle keep-alive client (a boto3 pool) never answers a TLS close_notify: the stop aborts such connections
    # instead of waiting out the graceful timeout (the demo's stop took 10-30 s and left server.json behind).
    import http.client
    import ssl

    srv = start_server(tmp_path / "data", tmp_path / "home", "--workers", workers)
    time.sleep(1.5 if workers == "2" else 0)  # both workers serving (each takes connections once imported)
    host, port = srv.url.removeprefix("https://").split(":")
    conn = http.client.HTTPSConnection(host, int(port), context=ssl.create_default_context(cafile=srv.ca_bundle))
    conn.request("POST", "/", b"Action=GetCallerIdentity&Version=2011-06-15",
                 {"Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    response.read()
    assert response.status == 403 and not response.will_close
    started = time.monotonic()
    os.kill(srv.process.pid, signal.SIGTERM)
    srv.process.wait(timeout=15)
    assert time.monotonic() - started < 5
    assert not (tmp_path / "data" / "server.json").exists()
    conn.close()


def test_stop_as_soon_as_server_json_appears_is_graceful(tmp_path: Path) -> None:
    # server.json used to be written before uvicorn's signal handlers were in place: a SIGTERM in that window
    # (a client stopping the server as soon as it is "ready") left a server running and server.json behind,
    # in about one start of four. It is now written from uvicorn's startup, once it serves.
    for i in range(6):
        srv = start_server(tmp_path / f"data{i}", tmp_path / "home")
        os.kill(srv.process.pid, signal.SIGTERM)
        try:
            srv.process.wait(timeout=8)
        except subprocess.TimeoutExpired:
            srv.process.kill()
            raise AssertionError(f"start {i}: the server ignored SIGTERM sent right after server.json") from None
        assert not (tmp_path / f"data{i}" / "server.json").exists()


def test_incomplete_request_error_is_a_sender_error() -> None:
    assert errors.IncompleteRequest("x").status == 400
