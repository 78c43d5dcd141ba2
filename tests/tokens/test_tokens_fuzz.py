"""Hypothesis fuzzing of the token parser: only AWS errors ever escape, never a crash."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokens_forge import ISSUER, NOW, claims, seg

from rolebridge.errors import ExpiredTokenException, InvalidIdentityToken, ValidationError
from rolebridge.tokens import (
    KeyRing,
    check_audience,
    check_length,
    check_subject,
    check_times,
    parse_unverified,
)
from rolebridge.tokens.verifier import verify_signature

ALLOWED = (InvalidIdentityToken, ValidationError, ExpiredTokenException)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def ring(tmp_path_factory):
    return KeyRing.create(tmp_path_factory.mktemp("ring") / "k", alg="ES256")


def run_all(token: str, jwks: dict) -> None:
    """STS's sequence of token checks (without the provider lookup)."""
    check_length(token)
    parsed = parse_unverified(token)
    check_audience(parsed, ["sts.amazonaws.com"])
    verify_signature(parsed, jwks)
    check_times(parsed, now=NOW)
    check_subject(parsed)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_arbitrary_text(ring, text):
    try:
        run_all(text, ring.jwks())
    except ALLOWED:
        pass


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/.", max_size=60),
        min_size=1,
        max_size=6,
    )
)
def test_base64ish_segments(ring, parts):
    try:
        run_all(".".join(parts), ring.jwks())
    except ALLOWED:
        pass


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    header=st.dictionaries(
        st.sampled_from(["alg", "kid", "typ", "cty", "crit", "jwk", "jku", "x5c", "b64", "zip"]),
        json_values,
        max_size=5,
    ),
    payload=st.dictionaries(
        st.sampled_from(["iss", "sub", "aud", "exp", "iat", "nbf", "azp", "x"]), json_values, max_size=7
    ),
    sig=st.binary(max_size=80),
)
def test_structured_json(ring, header, payload, sig):
    token = f"{seg(header)}.{seg(json.dumps(payload))}.{seg(sig) if sig else 'AA'}"
    try:
        run_all(token, ring.jwks())
    except ALLOWED:
        pass
    else:  # pragma: no cover - a random signature must never verify
        raise AssertionError("forged token accepted")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    over=st.dictionaries(st.sampled_from(["iss", "sub", "aud", "exp", "iat", "nbf"]), json_values, max_size=3)
)
def test_signed_claims_mutations(ring, over):
    """Correctly signed tokens with hostile claim values: still only AWS errors, or success."""
    token = ring.sign(claims(**over))
    try:
        run_all(token, ring.jwks())
    except ALLOWED:
        return
    c = parse_unverified(token).claims
    assert c["iss"] == ISSUER or isinstance(c["iss"], str)
    assert type(c["exp"]) is int and isinstance(c["sub"], str) and c["sub"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200))
def test_raw_bytes_segments(ring, data):
    token = f"{seg(data)}.{seg(data[::-1])}.{seg(data[:10] or b'x')}"
    try:
        run_all(token, ring.jwks())
    except ALLOWED:
        pass


def test_deep_nesting_is_refused_not_a_crash(ring):
    deep = "[" * 5000 + "]" * 5000
    token = f"{seg({'alg': 'ES256'})}.{seg(deep)}.AA"
    with pytest.raises(InvalidIdentityToken):
        parse_unverified(token)
    deep_obj = '{"a":' * 3000 + "1" + "}" * 3000
    with pytest.raises(InvalidIdentityToken):
        parse_unverified(f"{seg({'alg': 'ES256'})}.{seg(deep_obj)}.AA")
