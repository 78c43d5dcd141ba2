"""JWKSFetcher against a real local HTTPS server with a throwaway PKI."""

from __future__ import annotations

import asyncio
import hashlib
import socket

import pytest
from tokens_forge import NOW
from tokens_pki import Cert, HTTPSServer, Route, make_cert

from rolebridge.errors import IDPCommunicationError, InvalidIdentityToken, UntrustedIssuerTLS
from rolebridge.tokens import KeyRing, mint_service_account_token, parse_unverified, verify_signature
from rolebridge.tokens.remote import (
    COULDNT_RETRIEVE,
    JWKSFetcher,
    certificate_thumbprint,
    fetch_top_thumbprint,
)

ISSUER_PATH = "/clusters/alpha"


@pytest.fixture(scope="module")
def pki():
    root = make_cert("rolebridge test root", ca=True)
    inter = make_cert("rolebridge test intermediate", root, ca=True)
    leaf = make_cert("127.0.0.1", inter, ca=False, sans=["127.0.0.1", "localhost"])
    return {"root": root, "inter": inter, "leaf": leaf}


@pytest.fixture(scope="module")
def ring(tmp_path_factory):
    return KeyRing.create(tmp_path_factory.mktemp("ring") / "k", alg="ES256")


def _serve(tmp_path, chain: list[Cert], ring: KeyRing) -> HTTPSServer:
    server = HTTPSServer(tmp_path, chain)
    issuer = server.url + ISSUER_PATH
    server.json(
        ISSUER_PATH + "/.well-known/openid-configuration",
        {"issuer": issuer, "jwks_uri": issuer + "/keys.json"},
    )
    server.json(ISSUER_PATH + "/keys.json", ring.jwks())
    return server


@pytest.fixture
def server(tmp_path, pki, ring):
    """Sends leaf + intermediate (the root is not sent): the top certificate is the intermediate."""
    s = _serve(tmp_path, [pki["leaf"], pki["inter"]], ring)
    yield s
    s.close()


def fetch(fetcher: JWKSFetcher, issuer: str, thumbprints=(), kid=None, now=NOW):
    return asyncio.run(fetcher.get_jwks(issuer, thumbprints=list(thumbprints), kid=kid, now=now))


def couldnt(fn, *args, **kw) -> InvalidIdentityToken:
    with pytest.raises(InvalidIdentityToken) as err:
        fn(*args, **kw)
    assert err.value.message == COULDNT_RETRIEVE
    assert "provider,  please" in err.value.message  # AWS's double space
    return err.value


def test_certificate_thumbprint(pki):
    expected = hashlib.sha1(pki["root"].der, usedforsecurity=False).hexdigest()
    assert certificate_thumbprint(pki["root"].pem) == expected
    assert certificate_thumbprint(pki["root"].pem.decode()) == expected
    assert certificate_thumbprint(pki["root"].der) == expected
    assert len(expected) == 40 and expected == expected.lower()


def test_ca_verified_fetch_and_token_verifies(server, pki, ring, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(pki["root"].pem)
    fetcher = JWKSFetcher(ca_bundle=bundle)
    issuer = server.url + ISSUER_PATH
    jwks = fetch(fetcher, issuer)
    assert jwks == ring.jwks()
    token = mint_service_account_token(
        ring, issuer_url=issuer, namespace="dev", service_account="app", now=NOW
    )
    verify_signature(parse_unverified(token), jwks)
    assert server.hits == [ISSUER_PATH + "/.well-known/openid-configuration", ISSUER_PATH + "/keys.json"]


def test_pinned_fetch_with_untrusted_ca(server, pki, ring):
    """The top certificate sent is the intermediate: its thumbprint pins the connection."""
    fetcher = JWKSFetcher()
    issuer = server.url + ISSUER_PATH
    pin = certificate_thumbprint(pki["inter"].der)
    assert fetch(fetcher, issuer, [pin.upper()]) == ring.jwks()


def test_pin_of_the_root_that_is_not_sent_does_not_match(server, pki):
    """AWS hashes the top certificate *presented*; the unsent root's thumbprint is not it."""
    couldnt(fetch, JWKSFetcher(), server.url + ISSUER_PATH, [certificate_thumbprint(pki["root"].der)])


def test_pinned_root_when_sent(tmp_path, pki, ring):
    server = _serve(tmp_path, [pki["leaf"], pki["inter"], pki["root"]], ring)
    try:
        fetcher = JWKSFetcher()
        jwks = fetch(fetcher, server.url + ISSUER_PATH, [certificate_thumbprint(pki["root"].der)])
        assert jwks == ring.jwks()
    finally:
        server.close()


def test_unpinned_untrusted_refused(server, pki):
    err = couldnt(fetch, JWKSFetcher(), server.url + ISSUER_PATH)
    assert "no thumbprints" in err.explanation
    err = couldnt(fetch, JWKSFetcher(), server.url + ISSUER_PATH, ["0" * 40])
    assert "matches none" in err.explanation
    assert server.hits == []  # nothing was ever requested over an unverified connection


def test_certificate_failures_are_untrusted_tls_not_unreachable(server, pki, tmp_path):
    """AWS says the same for every key-retrieval failure; the error's class says it was the certificate."""
    for pins, why in (((), "no thumbprints"), (["0" * 40], "matches none")):
        err = couldnt(fetch, JWKSFetcher(), server.url + ISSUER_PATH, pins)
        assert isinstance(err, UntrustedIssuerTLS) and err.cause == "tls-untrusted", err.explanation
        assert why in err.explanation
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    err = couldnt(fetch, JWKSFetcher(), f"https://127.0.0.1:{closed}{ISSUER_PATH}", ["0" * 40])
    assert not isinstance(err, UntrustedIssuerTLS), err.explanation


def test_pin_does_not_relax_hostname(tmp_path, pki, ring):
    wrong = make_cert("other.test", pki["inter"], ca=False, sans=["other.test"])
    server = _serve(tmp_path, [wrong, pki["inter"]], ring)
    try:
        err = couldnt(
            fetch, JWKSFetcher(), server.url + ISSUER_PATH, [certificate_thumbprint(pki["inter"].der)]
        )
        assert "pinned" in err.explanation and isinstance(err, UntrustedIssuerTLS)
        assert server.hits == []
    finally:
        server.close()


def test_self_signed_leaf_pinned(tmp_path, ring):
    leaf = make_cert("127.0.0.1", None, ca=False, sans=["127.0.0.1"])
    server = _serve(tmp_path, [leaf], ring)
    try:
        assert (
            fetch(JWKSFetcher(), server.url + ISSUER_PATH, [certificate_thumbprint(leaf.der)]) == ring.jwks()
        )
    finally:
        server.close()


def test_redirects(server, pki, ring, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(pki["root"].pem)
    issuer = server.url + ISSUER_PATH
    server.routes[ISSUER_PATH + "/keys.json"] = Route(302, headers={"Location": "/elsewhere/keys.json"})
    server.json("/elsewhere/keys.json", ring.jwks())
    assert fetch(JWKSFetcher(ca_bundle=bundle), issuer) == ring.jwks()  # same origin: followed
    other = f"https://localhost:{server.port}/elsewhere/keys.json"
    server.routes[ISSUER_PATH + "/keys.json"] = Route(302, headers={"Location": other})
    err = couldnt(fetch, JWKSFetcher(ca_bundle=bundle), issuer)
    assert "another origin" in err.explanation
    server.routes[ISSUER_PATH + "/keys.json"] = Route(302, headers={"Location": ISSUER_PATH + "/keys.json"})
    err = couldnt(fetch, JWKSFetcher(ca_bundle=bundle), issuer)
    assert "too many redirects" in err.explanation


def test_oversized_response_refused(server, pki, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(pki["root"].pem)
    big = {"keys": [{"kty": "RSA", "kid": str(i), "n": "A" * 1000, "e": "AQAB"} for i in range(80)]}
    server.json(ISSUER_PATH + "/keys.json", big)
    err = couldnt(fetch, JWKSFetcher(ca_bundle=bundle), server.url + ISSUER_PATH)
    assert "larger than 65536" in err.explanation


def test_timeout_is_idp_communication_error(server, pki, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(pki["root"].pem)
    server.routes[ISSUER_PATH + "/keys.json"] = Route(200, b"{}", delay=2.0)
    with pytest.raises(IDPCommunicationError) as err:
        fetch(JWKSFetcher(ca_bundle=bundle, read_timeout=0.3), server.url + ISSUER_PATH)
    assert err.value.code == "IDPCommunicationError" and "timed out" in err.value.explanation


@pytest.mark.parametrize(
    ("route", "why"),
    [
        (Route(404, b"{}"), "HTTP 404"),
        (Route(200, b"not json"), "JSON"),
        (Route(200, b'{"keys": [], "keys": []}'), "duplicate"),
        (Route(200, b'{"keys": []}'), "no usable keys"),
        (Route(200, b'[{"kty": "RSA"}]'), "JSON object"),
    ],
)
def test_bad_jwks_responses(server, pki, tmp_path, route, why):
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(pki["root"].pem)
    server.routes[ISSUER_PATH + "/keys.json"] = route
    err = couldnt(fetch, JWKSFetcher(ca_bundle=bundle), server.url + ISSUER_PATH)
    assert why in err.explanation


def test_5xx_is_idp_communication_error(server, pki, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(pki["root"].pem)
    server.routes[ISSUER_PATH + "/.well-known/openid-configuration"] = Route(503, b"")
    with pytest.raises(IDPCommunicationError):
        fetch(JWKSFetcher(ca_bundle=bundle), server.url + ISSUER_PATH)


def test_http_and_unreachable_refused():
    couldnt(fetch, JWKSFetcher(), "http://127.0.0.1:1/x")
    couldnt(fetch, JWKSFetcher(), "https://user:pw@127.0.0.1:1/x")
    err = couldnt(fetch, JWKSFetcher(), "https://127.0.0.1:1/x")
    assert "cannot connect" in err.explanation


def test_jwks_uri_must_be_https(server, pki, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(pki["root"].pem)
    server.json(ISSUER_PATH + "/.well-known/openid-configuration", {"jwks_uri": "http://127.0.0.1/keys"})
    couldnt(fetch, JWKSFetcher(ca_bundle=bundle), server.url + ISSUER_PATH)


def test_cache_ttl_and_bounded_refresh(server, pki, ring, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(pki["root"].pem)
    fetcher = JWKSFetcher(ca_bundle=bundle, ttl=3600, min_refresh_interval=60)
    issuer = server.url + ISSUER_PATH
    kid = ring.active_kid
    fetch(fetcher, issuer, kid=kid)
    fetch(fetcher, issuer, kid=kid, now=NOW + 10)
    assert fetcher.fetch_count == 1
    # A flood of unknown kids: at most one refresh per interval.
    for i in range(50):
        fetch(fetcher, issuer, kid=f"unknown-{i}", now=NOW + 30 + i * 0.1)
    assert fetcher.fetch_count == 1  # last attempt (NOW) was < 60 s ago
    fetch(fetcher, issuer, kid="unknown", now=NOW + 61)
    assert fetcher.fetch_count == 2
    fetch(fetcher, issuer, kid="unknown", now=NOW + 62)
    assert fetcher.fetch_count == 2
    # TTL expiry refetches even for a known kid.
    fetch(fetcher, issuer, kid=kid, now=NOW + 61 + 3600)
    assert fetcher.fetch_count == 3
    # Different pins are a different cache entry.
    fetch(fetcher, issuer, ["ab" * 20], kid=kid, now=NOW + 61 + 3600)
    assert fetcher.fetch_count == 4


def test_failures_are_remembered_and_stale_keys_survive_refresh_failure(server, pki, ring, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(pki["root"].pem)
    fetcher = JWKSFetcher(ca_bundle=bundle, min_refresh_interval=60)
    issuer = server.url + ISSUER_PATH
    jwks = fetch(fetcher, issuer)
    server.routes[ISSUER_PATH + "/keys.json"] = Route(404, b"{}")
    # unknown kid triggers a refresh that fails: cached (still fresh) keys are returned
    assert fetch(fetcher, issuer, kid="new", now=NOW + 100) == jwks
    hits = len(server.hits)
    # new fetcher: failure is negative-cached for the interval
    cold = JWKSFetcher(ca_bundle=bundle, min_refresh_interval=60)
    couldnt(fetch, cold, issuer)
    couldnt(fetch, cold, issuer, now=NOW + 30)
    assert len(server.hits) == hits + 2  # discovery + keys once, not twice


def test_fetch_top_thumbprint(server, pki, tmp_path, ring):
    assert fetch_top_thumbprint(server.url + ISSUER_PATH) == certificate_thumbprint(pki["inter"].der)
    (tmp_path / "full").mkdir()
    full = _serve(tmp_path / "full", [pki["leaf"], pki["inter"], pki["root"]], ring)
    try:
        assert fetch_top_thumbprint(full.url) == certificate_thumbprint(pki["root"].pem)
    finally:
        full.close()
    with pytest.raises(InvalidIdentityToken):
        fetch_top_thumbprint("https://127.0.0.1:1/")


def test_extra_ca_bundle_alias(server, pki, ring, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(pki["root"].pem)
    assert fetch(JWKSFetcher(extra_ca_bundle=bundle), server.url + ISSUER_PATH) == ring.jwks()
