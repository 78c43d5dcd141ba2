"""SigV4 as S3 checks it: who signed the request, and how its payload is to be verified.

Differences from the Query endpoint's check (``http/sigv4.py``, whose parser and scope check are
reused): the canonical URI is the raw path, never normalised; the payload line is whatever
``x-amz-content-sha256`` declares (a hex digest checked *after* the body streamed through,
``UNSIGNED-PAYLOAD``, or one of the ``STREAMING-*`` modes whose chunks ``chunked.py`` verifies
with the signing key and seed signature returned here); presigned URLs sign ``UNSIGNED-PAYLOAD``;
any region is accepted for service ``s3``. Requests with no authentication at all are anonymous
(``caller=None``): only a bucket policy naming ``*`` can let them through.
"""

from __future__ import annotations

import hashlib
import hmac
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from botocore.auth import SigV4Auth
from botocore.awsrequest import HTTPHeaders
from botocore.credentials import Credentials

from rolebridge import errors
from rolebridge.caller import Caller
from rolebridge.http.sigv4 import MAX_SKEW_SECONDS, SigV4Credentials, check_scope, parse_sigv4, signing_key
from rolebridge.services import Services
from rolebridge.sts.credentials import open_session

UNSIGNED = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_MODES = (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER)
_HEX64 = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Authenticated:
    """The verified outcome. ``payload`` says how the body must be checked while it streams."""

    caller: Caller | None
    creds: SigV4Credentials | None
    payload: str  # "UNSIGNED-PAYLOAD" | a STREAMING-* mode | the expected lowercase hex SHA-256
    signing_key: bytes = b""
    seed_signature: str = ""

    @property
    def auth_type(self) -> str | None:
        if self.creds is None:
            return None
        return "REST-QUERY-STRING" if self.creds.presigned else "REST-HEADER"


def _check_time(creds: SigV4Credentials, now: float) -> None:
    signed_at = creds.signed_at
    if creds.presigned:
        assert creds.expires is not None
        if signed_at > now + MAX_SKEW_SECONDS:
            raise errors.AccessDenied("Request is not valid yet")
        if now > signed_at + creds.expires:
            raise errors.AccessDenied("Request has expired")
        return
    if abs(signed_at - now) > MAX_SKEW_SECONDS:
        raise errors.RequestTimeTooSkewed("The difference between the request time and the current time "
                                          "is too large.")


def _payload_mode(creds: SigV4Credentials, headers: Mapping[str, str]) -> str:
    declared = headers.get("x-amz-content-sha256")
    if creds.presigned:
        return declared or UNSIGNED
    if declared is None:
        raise errors.InvalidRequest("Missing required header for this request: x-amz-content-sha256")
    if declared in (UNSIGNED, *STREAMING_MODES):
        return declared
    lowered = declared.lower()
    if len(lowered) != 64 or not set(lowered) <= _HEX64:
        raise errors.InvalidArgument("x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-*, "
                                     "or a valid sha256 value.")
    return lowered


def _secret_for(services: Services, creds: SigV4Credentials) -> tuple[Caller, str]:
    token = creds.security_token
    if token:
        try:
            return open_session(services.server_key, token, creds.access_key_id)
        except errors.InvalidClientTokenId as exc:
            raise errors.InvalidToken() from exc
    found = services.long_term_key(creds.access_key_id)
    if found is None:
        raise errors.InvalidAccessKeyId()
    return found


def _query_pairs(query_string: str, presigned: bool) -> list[tuple[str, str]]:
    pairs = urllib.parse.parse_qsl(query_string, keep_blank_values=True)
    return [(k, v) for k, v in pairs if not (presigned and k == "X-Amz-Signature")]


def authenticate(services: Services, *, method: str, raw_path: str, query_string: str,
                 headers: Mapping[str, str], query: Mapping[str, str], now: float) -> Authenticated:
    """Verify the request's signature (not yet its payload). ``headers`` are lower-cased."""
    creds = parse_sigv4(method, headers, query)
    if creds is None:
        return Authenticated(caller=None, creds=None, payload=headers.get("x-amz-content-sha256") or UNSIGNED)
    check_scope(creds, expected_service="s3", allowed_regions=None)
    if creds.date != creds.amz_date[:8]:
        raise errors.AuthorizationHeaderMalformed(
            f"The authorization header is malformed; Invalid credential date. Date is not the same as "
            f"X-Amz-Date: {creds.date}.")
    if "host" not in creds.signed_headers:
        raise errors.AccessDenied("There were headers present in the request which were not signed")
    caller, secret = _secret_for(services, creds)
    _check_time(creds, now)
    payload = _payload_mode(creds, headers)
    to_sign = HTTPHeaders()
    for name in creds.signed_headers:
        to_sign[name] = headers.get(name, "")
    signer = SigV4Auth(Credentials(creds.access_key_id, secret), "s3", creds.region)
    canonical = "\n".join([
        method.upper(),
        raw_path or "/",
        signer._canonical_query_string_params(_query_pairs(query_string, creds.presigned)),
        signer.canonical_headers(to_sign) + "\n",
        ";".join(creds.signed_headers),
        payload,
    ])
    string_to_sign = "\n".join([
        "AWS4-HMAC-SHA256", creds.amz_date, creds.scope, hashlib.sha256(canonical.encode()).hexdigest(),
    ])
    key = signing_key(secret, creds.date, creds.region, "s3")
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), creds.signature.encode()):
        raise errors.SignatureDoesNotMatch(
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.")
    if caller.expiration is not None and now >= caller.expiration:
        raise errors.ExpiredToken("The provided token has expired.")
    return Authenticated(caller=caller, creds=creds, payload=payload, signing_key=key,
                         seed_signature=creds.signature)
