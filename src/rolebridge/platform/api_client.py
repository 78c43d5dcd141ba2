"""A small client of the platform API, used by the CLI when a server is running.

Keys come from ``ROLEBRIDGE_ACCESS_KEY_ID``/``ROLEBRIDGE_SECRET_ACCESS_KEY`` when set (never from the
standard ``AWS_*`` variables, which a shell holds for IAM clients: see ``cli/run_scope.py``);
otherwise the CLI, which holds the data dir and so the server key, uses an active admin key of the
account it acts for. Either way the server sees an ordinary bearer token derived from one account's
keys (``api_auth``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
from sqlalchemy import select

from rolebridge import errors
from rolebridge.platform.api_auth import derive_token
from rolebridge.platform.server_info import ServerInfo
from rolebridge.services import SECRET_PURPOSE, Services
from rolebridge.store.schema import AccessKey

TIMEOUT = httpx.Timeout(30.0, connect=5.0)
_CODES = {404: errors.NoSuchEntity, 400: errors.ValidationError, 401: errors.InvalidClientTokenId,
          403: errors.AccessDenied}


KEY_ID_ENV, SECRET_ENV = "ROLEBRIDGE_ACCESS_KEY_ID", "ROLEBRIDGE_SECRET_ACCESS_KEY"


def env_keys() -> tuple[str, str] | None:
    """Platform keys the environment names explicitly (both variables set), else None."""
    akid, secret = os.environ.get(KEY_ID_ENV), os.environ.get(SECRET_ENV)
    return (akid, secret) if akid and secret else None


def stored_keys(services: Services, account_id: str) -> tuple[str, str]:
    """An active admin key of ``account_id``, unsealed with the data dir's server key."""
    with services.store.read() as s:
        row = s.execute(select(AccessKey).where(AccessKey.account_id == account_id, AccessKey.status == "Active")
                        .order_by(AccessKey.created_at.desc())).scalars().first()
        if row is None:
            raise errors.NoSuchEntity(f"Account {account_id} has no active access key.")
        return row.access_key_id, services.server_key.open(row.secret_sealed, purpose=SECRET_PURPOSE).decode()


class PlatformClient:
    def __init__(self, server: ServerInfo, access_key_id: str, secret_access_key: str) -> None:
        self._keys = (access_key_id, secret_access_key)
        self._http = httpx.Client(base_url=server.url.rstrip("/") + "/api", verify=server.ca_bundle,
                                  timeout=TIMEOUT)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": "Bearer " + derive_token(*self._keys)}

    def request(self, method: str, path: str, **kw: Any) -> Any:
        response = self._http.request(method, path, headers=self._headers(), **kw)
        if response.status_code >= 400:
            try:
                body = response.json()
                code, message = body.get("code", ""), body.get("message") or str(body.get("detail"))
            except ValueError:
                code, message = "", response.text
            cls = _CODES.get(response.status_code, errors.ServiceFailure)
            err = cls(message)
            if code:
                err.code = code
            raise err
        return response.json()

    def runs(self, **params: Any) -> list[dict[str, Any]]:
        return self.request("GET", "/runs", params={k: v for k, v in params.items() if v is not None})

    def run(self, run_id: str) -> dict[str, Any]:
        return self.request("GET", f"/runs/{run_id}")

    def cancel(self, run_id: str) -> dict[str, Any]:
        return self.request("POST", f"/runs/{run_id}/cancel")

    def submit(self, **body: Any) -> dict[str, Any]:
        return self.request("POST", "/runs", json={k: v for k, v in body.items() if v is not None})

    def logs(self, run_id: str, offset: int = 0) -> dict[str, Any]:
        return self.request("GET", f"/runs/{run_id}/logs", params={"offset": offset})

    def follow(self, run_id: str, poll: float = 0.2) -> Iterator[str]:
        import time

        offset = 0
        while True:
            page = self.logs(run_id, offset)
            offset = page["next_offset"]
            if page["data"]:
                yield page["data"]
                continue
            if page["status"] in ("succeeded", "failed", "cancelled"):
                return
            time.sleep(poll)

    def close(self) -> None:
        self._http.close()
