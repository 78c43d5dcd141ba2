"""KeyRing, discovery document and minting."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
import uuid

import pytest
from tokens_forge import ISSUER, NOW

from rolebridge.clock import FixedClock
from rolebridge.errors import InvalidIdentityToken, InvalidParameterValue
from rolebridge.tokens import (
    DISCOVERY_PATH,
    JWKS_PATH,
    KeyRing,
    discovery_document,
    mint_service_account_token,
    parse_unverified,
    verify_token,
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def rsa_ring(tmp_path_factory):
    return KeyRing.create(tmp_path_factory.mktemp("ring") / "keys")


def test_kid_is_rfc7638_thumbprint(rsa_ring):
    (jwk,) = rsa_ring.jwks()["keys"]
    members = {"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    assert jwk["kid"] == _b64(hashlib.sha256(canonical).digest())
    assert jwk["kid"] == rsa_ring.active_kid
    assert (jwk["alg"], jwk["use"], jwk["kty"], jwk["e"]) == ("RS256", "sig", "RSA", "AQAB")
    assert len(base64.urlsafe_b64decode(jwk["n"] + "==")) == 256  # RSA-2048


def test_rfc7638_example_vector():
    """The worked example of RFC 7638 §3.1."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from rolebridge.tokens._jose import b64url_decode, jwk_thumbprint

    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMs"
        "tn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajr"
        "n1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    key = rsa.RSAPublicNumbers(65537, int.from_bytes(b64url_decode(n), "big")).public_key()
    assert jwk_thumbprint(key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_jwks_is_public_only_and_files_are_0600(rsa_ring):
    text = json.dumps(rsa_ring.jwks())
    for private in ('"d"', '"p"', '"q"', '"dp"', '"dq"', '"qi"'):
        assert private not in text
    d = rsa_ring.directory
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    files = sorted(p.name for p in d.iterdir())
    assert files == sorted([f"{rsa_ring.active_kid}.pem", "ring.json"])
    for p in d.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p


def test_load_round_trip_and_refuses_loose_permissions(tmp_path):
    ring = KeyRing.create(tmp_path / "k", alg="ES256")
    again = KeyRing.load(tmp_path / "k")
    assert again.active_kid == ring.active_kid and again.jwks() == ring.jwks()
    with pytest.raises(FileExistsError):
        KeyRing.create(tmp_path / "k")
    (tmp_path / "k" / f"{ring.active_kid}.pem").chmod(0o644)
    with pytest.raises(PermissionError):
        KeyRing.load(tmp_path / "k")


def test_load_refuses_path_traversal_kid(tmp_path):
    ring = KeyRing.create(tmp_path / "k", alg="ES256")
    manifest = json.loads((tmp_path / "k" / "ring.json").read_text())
    manifest["keys"][0]["kid"] = "../../etc/passwd"
    manifest["active"] = "../../etc/passwd"
    (tmp_path / "k" / "ring.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="corrupt"):
        KeyRing.load(ring.directory)


def test_unknown_alg_refused(tmp_path):
    with pytest.raises(ValueError, match="unsupported signing algorithm"):
        KeyRing.create(tmp_path / "k", alg="HS256")


def test_discovery_document():
    doc = discovery_document(ISSUER)
    assert doc["issuer"] == ISSUER
    assert doc["jwks_uri"] == ISSUER + "/keys.json" == ISSUER + JWKS_PATH
    assert DISCOVERY_PATH == "/.well-known/openid-configuration"
    assert doc["response_types_supported"] == ["id_token"]
    assert doc["subject_types_supported"] == ["public"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256", "ES256"]
    assert {"sub", "aud", "iss", "exp", "iat"} <= set(doc["claims_supported"])
    with pytest.raises(InvalidParameterValue):
        discovery_document("http://127.0.0.1/x")


def test_mint_shape(rsa_ring):
    clock = FixedClock(NOW + 0.75)
    token = mint_service_account_token(
        rsa_ring, issuer_url=ISSUER, namespace="dev", service_account="cross.account.sample-1234", now=clock()
    )
    parsed = parse_unverified(token)
    assert parsed.header == {"alg": "RS256", "kid": rsa_ring.active_kid}
    c = parsed.claims
    assert c["iss"] == ISSUER
    assert c["sub"] == "system:serviceaccount:dev:cross.account.sample-1234"
    assert c["aud"] == ["sts.amazonaws.com"]
    assert (c["iat"], c["nbf"], c["exp"]) == (NOW, NOW, NOW + 86400)
    assert all(type(c[k]) is int for k in ("iat", "nbf", "exp"))
    assert uuid.UUID(c["jti"]).version == 4
    k8s = c["kubernetes.io"]
    assert k8s["namespace"] == "dev"
    assert k8s["serviceaccount"]["name"] == "cross.account.sample-1234"
    assert uuid.UUID(k8s["serviceaccount"]["uid"])
    other = parse_unverified(
        mint_service_account_token(
            rsa_ring,
            issuer_url=ISSUER,
            namespace="dev",
            service_account="cross.account.sample-1234",
            now=clock(),
        )
    )
    assert other.claims["jti"] != c["jti"]
    assert other.claims["kubernetes.io"]["serviceaccount"]["uid"] == k8s["serviceaccount"]["uid"]
    verified, aud = verify_token(
        token, issuer=ISSUER, client_ids=["sts.amazonaws.com"], jwks=rsa_ring.jwks(), now=clock()
    )
    assert aud == "sts.amazonaws.com" and verified.subject == c["sub"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"namespace": "Dev"}, "namespace"),
        ({"namespace": "a" * 64}, "namespace"),
        ({"namespace": "dev:x"}, "namespace"),
        ({"service_account": "app:x"}, "service account"),
        ({"service_account": "-app"}, "service account"),
        ({"service_account": "a" * 254}, "service account"),
        ({"expires_in": 599}, "expires_in"),
        ({"expires_in": 48 * 3600 + 1}, "expires_in"),
        ({"expires_in": 3600.0}, "expires_in"),
        ({"audiences": []}, "audiences"),
        ({"audiences": [""]}, "audiences"),
        ({"extra_claims": {"sub": "system:serviceaccount:kube-system:admin"}}, "reserved"),
        ({"issuer_url": "http://example.test"}, "https"),
    ],
)
def test_mint_validation(rsa_ring, kwargs, match):
    args = {"issuer_url": ISSUER, "namespace": "dev", "service_account": "app", "now": NOW} | kwargs
    with pytest.raises(InvalidParameterValue, match=match):
        mint_service_account_token(rsa_ring, **args)


def test_mint_bounds_and_audiences(rsa_ring):
    for expires_in in (600, 48 * 3600):
        t = mint_service_account_token(
            rsa_ring,
            issuer_url=ISSUER,
            namespace="dev",
            service_account="app",
            expires_in=expires_in,
            now=NOW,
            audiences=["a", "b"],
        )
        c = parse_unverified(t).claims
        assert c["exp"] - c["iat"] == expires_in and c["aud"] == ["a", "b"]
    with pytest.raises(InvalidParameterValue):
        mint_service_account_token(
            rsa_ring,
            issuer_url=ISSUER,
            namespace="dev",
            service_account="app",
            expires_in=7200,
            now=NOW,
            max_expires_in=3600,
        )


def test_es256_ring(tmp_path):
    ring = KeyRing.create(tmp_path / "ec", alg="ES256")
    (jwk,) = ring.jwks()["keys"]
    assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("EC", "P-256", "ES256")
    assert "d" not in jwk
    token = mint_service_account_token(
        ring, issuer_url=ISSUER, namespace="dev", service_account="app", now=NOW
    )
    parsed = parse_unverified(token)
    assert parsed.header["alg"] == "ES256" and len(parsed.signature) == 64
    verify_token(token, issuer=ISSUER, client_ids=["sts.amazonaws.com"], jwks=ring.jwks(), now=NOW)


def test_rotation_end_to_end(tmp_path):
    clock = FixedClock(NOW)
    ring = KeyRing.create(tmp_path / "k")
    old_kid = ring.active_kid
    mint = lambda: mint_service_account_token(  # noqa: E731
        ring, issuer_url=ISSUER, namespace="dev", service_account="app", expires_in=3600, now=clock()
    )
    old_token = mint()
    clock.advance(600)
    new_kid = ring.rotate(now=clock(), retain_until=clock() + 3600 + 300)
    assert new_kid != old_kid and ring.active_kid == new_kid
    assert [k["kid"] for k in ring.jwks()["keys"]] == [old_kid, new_kid]
    new_token = mint()
    assert parse_unverified(new_token).kid == new_kid
    ok = dict(issuer=ISSUER, client_ids=["sts.amazonaws.com"])
    # Reloaded from disk (as the server would), both verify.
    reloaded = KeyRing.load(ring.directory)
    verify_token(old_token, jwks=reloaded.jwks(), now=clock(), **ok)
    verify_token(new_token, jwks=reloaded.jwks(), now=clock(), **ok)
    # jwks(now=...) drops the retired key once retain_until passed; prune deletes it for good.
    clock.advance(3600 + 301)
    assert [k["kid"] for k in ring.jwks(now=clock())["keys"]] == [new_kid]
    assert ring.prune(now=clock()) == [old_kid]
    assert not (ring.directory / f"{old_kid}.pem").exists()
    assert [k["kid"] for k in KeyRing.load(ring.directory).jwks()["keys"]] == [new_kid]
    with pytest.raises(InvalidIdentityToken) as err:
        verify_token(old_token, jwks=ring.jwks(), now=NOW + 60, **ok)
    assert "no key" in err.value.explanation
    # A second rotation prunes expired retired keys too.
    clock.advance(10)
    third = ring.rotate(now=clock(), retain_until=clock() + 100)
    assert [k["kid"] for k in ring.jwks()["keys"]] == [new_kid, third]


def test_public_surface():
    import rolebridge.tokens as tokens
    import rolebridge.tokens.remote as remote

    assert sorted(tokens.__all__) == [
        "DISCOVERY_PATH",
        "JWKS_PATH",
        "KeyRing",
        "UnverifiedToken",
        "check_audience",
        "check_length",
        "check_subject",
        "check_times",
        "discovery_document",
        "mint_service_account_token",
        "parse_unverified",
        "verify_signature",
        "verify_token",
    ]
    assert all(hasattr(tokens, name) for name in tokens.__all__)
    assert sorted(remote.__all__) == [
        "COULDNT_RETRIEVE",
        "JWKSFetcher",
        "certificate_thumbprint",
        "fetch_top_thumbprint",
    ]
