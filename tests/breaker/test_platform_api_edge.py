"""The platform API (/api) never answers 500 to a body that is not UTF-8.

FastAPI's stock validation handler decoded the raw body strictly while building its 422, so a
POST /api/runs with bytes like ``\\xff\\xfe`` (no JSON content type) was an Internal Server Error.
"""

from __future__ import annotations

import httpx
import pytest

from conftest import Server
from rolebridge.platform.api_auth import derive_token

ACCOUNT = "707070707070"


@pytest.mark.parametrize("headers", [{}, {"Content-Type": "text/plain"}, {"Content-Type": "application/json"}])
def test_non_utf8_run_body_is_a_client_error(server: Server, headers: dict[str, str]) -> None:
    keys = server.account(ACCOUNT)
    auth = {"Authorization": "Bearer " + derive_token(keys["access_key_id"], keys["secret_access_key"])}
    r = httpx.post(server.url + "/api/runs", content=b"\xff\xfe", headers={**auth, **headers},
                   verify=server.ca_bundle, timeout=30)
    assert r.status_code in (400, 422), r.text
    body = r.json()
    assert body.get("detail") or body.get("code") == "ValidationError"
