"""The job's first assume, made before the job starts, exactly as the SDK will make it.

If STS refuses, the job would only print a botocore traceback; instead we replay the assume
in-process with a trace and tell the user what failed and how to fix it.

The call goes over HTTPS to the server's STS endpoint (so it is audited like the job's own), with
the standard library's ``http.client``: httpx costs ~0.2 s to import, and the warm server's control
socket keeps one ``StsClient`` connection alive across runs (docs/run-latency.md).
"""

from __future__ import annotations

import http.client
import ssl
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

if TYPE_CHECKING:
    from rolebridge.services import Services

TIMEOUT = 10.0


@dataclass
class AssumeOutcome:
    ok: bool
    assumed_arn: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    cause: str | None = None
    detail: str | None = None
    fix: str | None = None

    def to_dict(self) -> dict[str, str | bool | None]:
        return dict(self.__dict__)


def _text(root: ET.Element, tag: str) -> str | None:
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] == tag:
            return el.text
    return None


class StsClient:
    """One HTTPS connection to the STS endpoint, reused across calls (reconnects when the server closed it)."""

    def __init__(self, sts_url: str, ca_bundle: str) -> None:
        parts = urlsplit(sts_url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"the STS endpoint must be an https:// URL, not {sts_url!r}")
        self._host, self._port = parts.hostname, parts.port or 443
        self._path = (parts.path.rstrip("/") or "") + "/"
        self._context = ssl.create_default_context(cafile=ca_bundle)
        self._conn: http.client.HTTPSConnection | None = None
        self._lock = threading.Lock()

    def _post(self, body: bytes) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        for attempt in (1, 2):
            fresh = self._conn is None
            if self._conn is None:
                self._conn = http.client.HTTPSConnection(self._host, self._port, timeout=TIMEOUT,
                                                         context=self._context)
            try:
                self._conn.request("POST", self._path, body, headers)
                response = self._conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                self.close()
                if fresh or attempt == 2:  # a kept-alive connection may have been closed by the server: retry once
                    raise
                continue
            if response.will_close:
                self.close()
            return response.status, data
        raise AssertionError("unreachable")

    def assume(self, *, role_arn: str, session_name: str, token: str) -> AssumeOutcome:
        body = urlencode({"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": role_arn,
                          "RoleSessionName": session_name, "WebIdentityToken": token}).encode()
        with self._lock:
            status, data = self._post(body)
        root = ET.fromstring(data)  # noqa: S314 - our own server's XML
        if status == 200:
            return AssumeOutcome(True, assumed_arn=_text(root, "Arn"))
        return AssumeOutcome(False, error_code=_text(root, "Code"), error_message=_text(root, "Message"))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def fix_for(cause: str | None, *, role_arn: str, cluster_account: str, bare_role: bool) -> str:
    if cause == "role-missing" and bare_role:
        return (f"a bare role name means a role in the cluster's account {cluster_account}; a role in another "
                "account needs its full ARN (--aws-role arn:aws:iam::ACCOUNT:role/NAME)")
    if cause == "role-missing":
        return f"create {role_arn}, or fix the ARN (account, path and name must match the role)"
    if cause in ("provider-missing", "provider-in-other-account"):
        return ("register the cluster's issuer as an OIDC provider in the role's account "
                "(`rolebridge grant` does it, or see `rolebridge cluster list` for URL and thumbprint)")
    if cause and cause.startswith("audience"):
        return "add the token's audience (sts.amazonaws.com) to the provider's client IDs"
    if cause == "tls-untrusted":
        return "put the cluster's thumbprint (`rolebridge cluster list`) in the provider's thumbprint list"
    if cause == "token-expired":
        return "the job's token expired; check the clock and the token lifetime"
    if cause == "duration-too-long":
        return "ask for a shorter session or raise the role's MaxSessionDuration"
    return "make the role's trust policy allow this job's service account (see `rolebridge explain`)"


def explain_refusal(services: Services, outcome: AssumeOutcome, *, role_arn: str, session_name: str, token: str,
                    cluster_account: str, bare_role: bool) -> AssumeOutcome:
    """Replay the refused assume with ``rolebridge explain``'s classifier: one-line cause and fix."""
    from rolebridge.tools.explain import explain_assume

    explanation = explain_assume(services, role_arn=role_arn, token=token, session_name=session_name)
    outcome.cause = explanation.cause
    outcome.detail = explanation.one_line() if explanation.cause else None
    if explanation.cause == "role-missing" and bare_role:
        outcome.fix = fix_for(explanation.cause, role_arn=role_arn, cluster_account=cluster_account,
                              bare_role=bare_role)
    else:
        outcome.fix = explanation.fix
    return outcome
