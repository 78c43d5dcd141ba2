"""Schemathesis against the platform API (in-process ASGI, the same app the server mounts at /api).

Every operation is fuzzed from the OpenAPI document with a valid bearer token of an account
that owns a cluster and runs, and once without credentials; no response may be a 5xx and every
response must match the documented schema. Bounded: a few examples per operation, < 60 s.
POST /runs only accepts a registered project/job, so fuzzing never executes a made-up command.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from starlette.applications import Starlette
from starlette.testclient import TestClient

from rolebridge.bootstrap import open_services
from rolebridge.http.app import platform_mount
from rolebridge.iam.accounts import create_account
from rolebridge.platform.api_auth import derive_token
from rolebridge.platform.clusters import create_cluster
from rolebridge.platform.projects import parse_project, save_project
from rolebridge.platform.runs import RunRequest, create_run


def _build(tmp: Path) -> tuple[Starlette, str]:
    services = open_services(str(tmp / "data"), None, fix_public_url=True)
    keys = create_account(services.store, "350000000001")
    create_cluster(services, "fuzz", "350000000001", token_lifetime=600)
    save_project(services, parse_project({"project": "fuzz_project", "aws_role": "r-{{ env }}",
                                          "jobs": {"hello": {"command": ["true"]}}}))
    create_run(services, RunRequest(cluster="fuzz", project="fuzz_project", environment="dev", command=["true"]))
    app = Starlette(routes=[platform_mount(services)])
    return app, derive_token(keys.access_key_id, keys.secret_access_key, ttl=3600)


# built at import: schemathesis parametrizes from the app's schema at collection, before any fixture runs
_tmp = Path(tempfile.mkdtemp(prefix="rb-fuzz-"))
atexit.register(shutil.rmtree, _tmp, ignore_errors=True)
APP, TOKEN = _build(_tmp)
schema = schemathesis.openapi.from_asgi("/api/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@pytest.mark.timeout(120)
def test_platform_api_no_server_errors(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"},
                           checks=[not_a_server_error, response_schema_conformance])


@schema.parametrize()
@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck))
def test_platform_api_unauthenticated_is_401(case: schemathesis.Case) -> None:
    response = case.call()
    # routing (405), an unparseable body (400) and validation (422) come before auth; nothing else gets through
    assert response.status_code in (400, 401, 405, 422), response.text
    assert response.status_code < 500
    if response.status_code == 401:
        assert response.json()["code"] == "MissingAuthenticationToken"


def test_a_path_segment_holding_a_newline_reaches_the_api_and_its_auth() -> None:
    """Found by the fuzzer: Starlette's mount pattern stopped at a newline, so a percent-encoded
    ``%0A`` run id got a bare 404 before authentication (http/app.py ``_Mount``)."""
    client = TestClient(APP)
    for method, path in (("POST", "/api/runs/%0A/cancel"), ("GET", "/api/runs/%0A/logs"), ("GET", "/api/runs/a%0Ab")):
        response = client.request(method, path)
        assert response.status_code == 401, (method, path, response.status_code, response.text)
        assert response.json()["code"] == "MissingAuthenticationToken"
    authed = client.get("/api/runs/%0A/logs", headers={"Authorization": f"Bearer {TOKEN}"})
    assert authed.status_code == 404 and authed.json()["code"] != "HTTP404", authed.text  # the API's own answer
