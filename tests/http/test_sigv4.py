"""SigV4: requests signed by botocore itself verify; every tampering is refused with AWS's code."""

from __future__ import annotations

import dataclasses
import datetime as dt
import urllib.parse
from typing import Any

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from rolebridge import errors
from rolebridge.http.query import parse_query
from rolebridge.http.sigv4 import SigV4Credentials, check_scope, parse_sigv4, verify_sigv4

KEY, SECRET, TOKEN = "AKIAEXAMPLEKEY000001", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "session-token"
HOST = "127.0.0.1:8443"
BODY = b"Action=GetCallerIdentity&Version=2011-06-15"
SIGNED_AT = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
NOW = SIGNED_AT.timestamp()


@pytest.fixture(autouse=True)
def _freeze_botocore_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    # botocore reads the signing time from its own clock; pin it (botocore's, not rolebridge's).
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: SIGNED_AT.replace(tzinfo=None))


def signed_header_request(service: str = "sts", region: str = "us-east-1", token: str | None = None,
                          body: bytes = BODY) -> dict[str, Any]:
    request = AWSRequest(method="POST", url=f"https://{HOST}/", data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials(KEY, SECRET, token), service, region).add_auth(request)
    prepared = request.prepare()
    headers = {k: v for k, v in prepared.headers.items()}
    headers["Host"] = HOST  # what the HTTP client sends; botocore signed it from the URL
    return {"method": "POST", "path": "/", "query_string": "", "headers": headers, "body": prepared.body}


def presigned_request(service: str = "sts", region: str = "us-east-1", expires: int = 300,
                      token: str | None = TOKEN) -> dict[str, Any]:
    request = AWSRequest(method="GET", url=f"https://{HOST}/",
                         params={"Action": "GetCallerIdentity", "Version": "2011-06-15"})
    SigV4QueryAuth(Credentials(KEY, SECRET, token), service, region, expires=expires).add_auth(request)
    url = urllib.parse.urlsplit(request.prepare().url)
    return {"method": "GET", "path": url.path, "query_string": url.query, "headers": {"host": HOST}, "body": b""}


def verify(req: dict[str, Any], *, secret: str = SECRET, now: float = NOW, service: str | None = "sts",
           regions: Any = None, creds: SigV4Credentials | None = None) -> SigV4Credentials:
    query = parse_query(b"", req["query_string"].encode())
    creds = creds or parse_sigv4(req["method"], req["headers"], query)
    assert creds is not None
    verify_sigv4(creds, method=req["method"], path=req["path"], query_string=req["query_string"],
                 headers=req["headers"], body=req["body"], secret_access_key=secret, now=now,
                 expected_service=service, allowed_regions=regions)
    return creds


def refused(req: dict[str, Any], error: type[errors.AWSError], **kw: Any) -> errors.AWSError:
    with pytest.raises(error) as info:
        verify(req, **kw)
    return info.value


def test_header_signed_request_verifies_and_parses() -> None:
    creds = verify(signed_header_request(token=TOKEN, region="eu-west-1"))
    assert (creds.access_key_id, creds.date, creds.region, creds.service) == (KEY, "20260301", "eu-west-1", "sts")
    assert creds.amz_date == "20260301T120000Z"
    assert creds.security_token == TOKEN
    assert "host" in creds.signed_headers and not creds.presigned


def test_presigned_request_verifies() -> None:
    creds = verify(presigned_request())
    assert creds.presigned and creds.expires == 300 and creds.security_token == TOKEN


def test_iam_scope_us_east_1_only() -> None:
    verify(signed_header_request(service="iam"), service="iam", regions={"us-east-1"})
    err = refused(signed_header_request(service="iam", region="eu-west-1"), errors.SignatureDoesNotMatch,
                  service="iam", regions={"us-east-1"})
    assert err.message == "Credential should be scoped to a valid region."
    err = refused(signed_header_request(service="sts"), errors.SignatureDoesNotMatch, service="iam",
                  regions={"us-east-1"})
    assert err.message == "Credential should be scoped to correct service: 'iam'."
    err = refused(presigned_request(service="s3"), errors.SignatureDoesNotMatch)
    assert err.message == "Credential should be scoped to correct service: 'sts'."


def test_check_scope_alone_before_key_lookup() -> None:
    creds = parse_sigv4("POST", signed_header_request(service="iam", region="us-west-2")["headers"], {})
    assert creds is not None
    with pytest.raises(errors.SignatureDoesNotMatch):
        check_scope(creds, expected_service="iam", allowed_regions={"us-east-1"})


def test_wrong_secret_is_signature_does_not_match() -> None:
    err = refused(signed_header_request(), errors.SignatureDoesNotMatch, secret=SECRET + "x")
    assert err.code == "SignatureDoesNotMatch" and err.status == 403
    assert err.message.startswith("The request signature we calculated does not match")
    refused(presigned_request(), errors.SignatureDoesNotMatch, secret="other")


def test_tampered_body_header_and_query_are_refused() -> None:
    req = signed_header_request()
    refused({**req, "body": BODY + b"&RoleName=x"}, errors.SignatureDoesNotMatch)
    refused({**req, "headers": {**req["headers"], "Content-Type": "text/plain"}}, errors.SignatureDoesNotMatch)
    refused({**req, "headers": {**req["headers"], "Host": "evil.example:8443"}}, errors.SignatureDoesNotMatch)
    refused({**req, "method": "PUT"}, errors.SignatureDoesNotMatch)
    pre = presigned_request()
    refused({**pre, "query_string": pre["query_string"].replace("GetCallerIdentity", "GetSessionToken")},
            errors.SignatureDoesNotMatch)


def test_tampered_date_is_refused() -> None:
    req = signed_header_request()
    moved = {**req["headers"], "X-Amz-Date": "20260301T120100Z"}
    refused({**req, "headers": moved}, errors.SignatureDoesNotMatch)
    other_day = {**req["headers"], "X-Amz-Date": "20260302T000000Z"}
    err = refused({**req, "headers": other_day}, errors.SignatureDoesNotMatch, now=NOW + 12 * 3600)
    assert err.message == (
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
        "'20260301' != '20260302', from '20260302T000000Z'."
    )


def test_payload_hash_header_must_match_body() -> None:
    req = signed_header_request()
    for claimed in ("UNSIGNED-PAYLOAD", "0" * 64):
        headers = {**req["headers"], "X-Amz-Content-SHA256": claimed}
        refused({**req, "headers": headers}, errors.SignatureDoesNotMatch)


def test_clock_skew() -> None:
    req = signed_header_request()
    verify(req, now=NOW + 14 * 60)
    verify(req, now=NOW - 14 * 60)
    late = refused(req, errors.RequestTimeTooSkewed, now=NOW + 16 * 60)
    assert late.message == (
        "Signature expired: 20260301T120000Z is now earlier than 20260301T120100Z (20260301T121600Z - 15 min.)"
    )
    early = refused(req, errors.RequestTimeTooSkewed, now=NOW - 16 * 60)
    assert early.message == (
        "Signature not yet current: 20260301T120000Z is still later than 20260301T115900Z "
        "(20260301T114400Z + 15 min.)"
    )
    assert late.code == "RequestTimeTooSkewed" and late.status == 403


def test_presigned_url_expires() -> None:
    pre = presigned_request(expires=60)
    verify(pre, now=NOW + 59)
    refused(pre, errors.SignatureDoesNotMatch, now=NOW + 61)


def test_no_auth_is_none() -> None:
    assert parse_sigv4("POST", {"Host": HOST}, {}) is None


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        ("AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request", "Authorization header requires 'Signature' parameter. "
         "Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256 "
         "Credential=a/b/c/d/aws4_request"),
        ("AWS4-HMAC-SHA256 Credential=AKID/20260301/us-east-1/sts, SignedHeaders=host, Signature=ab",
         "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
         "got 'AKID/20260301/us-east-1/sts'"),
        ("AWS4-HMAC-SHA256 Credential=AKID/20260301/us-east-1/sts/aws5, SignedHeaders=host, Signature=ab",
         "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5'."),
        ("AWS AKID:signature", "Unsupported AWS 'algorithm': 'AWS'"),
    ],
)
def test_malformed_authorization_is_incomplete_signature(authorization: str, message: str) -> None:
    with pytest.raises(errors.IncompleteSignature) as info:
        parse_sigv4("POST", {"Authorization": authorization, "X-Amz-Date": "20260301T120000Z"}, {})
    assert info.value.message == message


def test_missing_date_and_bad_date() -> None:
    auth = "AWS4-HMAC-SHA256 Credential=AKID/20260301/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=ab"
    with pytest.raises(errors.IncompleteSignature, match="requires existence of either a 'X-Amz-Date'"):
        parse_sigv4("POST", {"Authorization": auth}, {})
    with pytest.raises(errors.IncompleteSignature, match="ISO-8601 'basic format'"):
        parse_sigv4("POST", {"Authorization": auth, "X-Amz-Date": "2026-03-01"}, {})


def test_presigned_missing_params_and_mixed_mechanisms() -> None:
    query = parse_query(b"", presigned_request()["query_string"].encode())
    partial = {k: v for k, v in query.items() if k != "X-Amz-Signature"}
    with pytest.raises(errors.IncompleteSignature, match="must include 'X-Amz-Signature'"):
        parse_sigv4("GET", {"host": HOST}, partial)
    with pytest.raises(errors.IncompleteSignature, match="X-Amz-Expires"):
        parse_sigv4("GET", {"host": HOST}, {**query, "X-Amz-Expires": "999999999"})
    with pytest.raises(errors.IncompleteSignature, match="Only one auth mechanism"):
        parse_sigv4("GET", {"host": HOST, "Authorization": "AWS4-HMAC-SHA256 x"}, query)


def test_host_must_be_signed() -> None:
    req = signed_header_request()
    creds = parse_sigv4("POST", req["headers"], {})
    assert creds is not None
    unsigned_host = dataclasses.replace(creds, signed_headers=tuple(h for h in creds.signed_headers if h != "host"))
    refused(req, errors.SignatureDoesNotMatch, creds=unsigned_host)


def test_non_ascii_signature_is_refused_not_crashing() -> None:
    req = signed_header_request()
    creds = parse_sigv4("POST", req["headers"], {})
    assert creds is not None
    refused(req, errors.SignatureDoesNotMatch, creds=dataclasses.replace(creds, signature="é" * 64))
