"""The hot path's memos remember pure parses only: every check that can fail still runs each call.

tokens/verifier.parse_unverified (a job re-sends its token file) and sts/credentials.open_session
(a client signs every call of a session with the same token).
"""

from __future__ import annotations

import base64
import json
import secrets
import time

import pytest

from rolebridge import errors
from rolebridge.caller import Caller
from rolebridge.errors import InvalidIdentityToken
from rolebridge.http import sigv4
from rolebridge.store.server_key import ServerKey
from rolebridge.sts import credentials
from rolebridge.tokens import verifier


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _token(claims: dict[str, object], pad: int = 0) -> str:
    header = _b64(json.dumps({"alg": "RS256", "kid": "k1"}).encode())
    body = dict(claims, pad="x" * pad)
    return f"{header}.{_b64(json.dumps(body).encode())}.{_b64(b'sig' * 86)}"


def test_only_a_remembered_token_is_parsed_once_and_a_long_or_bad_one_is_never_kept() -> None:
    token = _token({"iss": "https://issuer.example", "sub": secrets.token_hex(8)})
    first = verifier.parse_unverified(token)
    assert token not in verifier._PARSED  # parsing alone keeps nothing: what anyone sends is not held
    assert verifier.parse_unverified(token) is not first
    verifier.remember(first)  # what STS does once the signature verified
    assert verifier.parse_unverified(token) is first  # the same parse, shared

    long_token = _token({"iss": "https://issuer.example"}, pad=verifier._PARSED_MAX_CHARS)
    verifier.remember(verifier.parse_unverified(long_token))
    assert long_token not in verifier._PARSED  # large tokens are parsed every time, never held

    duplicate = _token({"iss": "https://a.example"}).split(".")
    duplicate[1] = _b64(b'{"iss":"https://a.example","iss":"https://b.example"}')
    bad = ".".join(duplicate)
    for _ in range(2):  # refused each time
        with pytest.raises(InvalidIdentityToken):
            verifier.parse_unverified(bad)
    assert bad not in verifier._PARSED


def test_the_parse_memo_is_bounded() -> None:
    for i in range(verifier._PARSED_MAX + 50):
        verifier.remember(verifier.parse_unverified(_token({"iss": "https://issuer.example", "n": i})))
    assert len(verifier._PARSED) <= verifier._PARSED_MAX


def _caller() -> Caller:
    return Caller(account_id="222222222222", arn="arn:aws:sts::222222222222:assumed-role/r/s",
                  user_id="AROAEXAMPLE:s", kind="assumed-role", access_key_id="", role_arn=None,
                  role_name="r", session_name="s", expiration=time.time() + 3600, session={})


def test_an_opened_session_is_remembered_but_the_key_id_is_checked_every_time() -> None:
    key = ServerKey([secrets.token_bytes(32)])
    issued, _ = credentials.issue(key, _caller(), expiration=time.time() + 3600)
    caller, secret = credentials.open_session(key, issued.session_token, issued.access_key_id)
    assert secret == issued.secret_access_key
    assert credentials.open_session(key, issued.session_token, issued.access_key_id)[0] is caller  # remembered
    with pytest.raises(errors.InvalidClientTokenId):  # another key id with a remembered token
        credentials.open_session(key, issued.session_token, "ASIAOTHEROTHEROTHER0")


def test_a_remembered_session_stops_opening_when_its_key_is_dropped_or_for_another_server_key() -> None:
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    key = ServerKey([old])
    issued, _ = credentials.issue(key, _caller(), expiration=time.time() + 3600)
    credentials.open_session(key, issued.session_token, issued.access_key_id)
    other = ServerKey([new])  # another server's keys: the memo of this one does not apply
    with pytest.raises(errors.InvalidClientTokenId):
        credentials.open_session(other, issued.session_token, issued.access_key_id)
    key._install([new])  # the key that sealed it is gone (what a reload of server.key does)
    with pytest.raises(errors.InvalidClientTokenId):
        credentials.open_session(key, issued.session_token, issued.access_key_id)


def test_the_cached_signing_key_is_sigv4s_derivation() -> None:
    import hashlib
    import hmac

    secret = secrets.token_urlsafe(30)
    k = hmac.new(f"AWS4{secret}".encode(), b"20261204", hashlib.sha256).digest()
    for part in (b"us-east-1", b"sts", b"aws4_request"):
        k = hmac.new(k, part, hashlib.sha256).digest()
    assert sigv4.signing_key(secret, "20261204", "us-east-1", "sts") == k
    assert sigv4.signing_key(secret, "20261205", "us-east-1", "sts") != k  # another day, another key
