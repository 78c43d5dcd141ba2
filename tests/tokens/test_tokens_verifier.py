"""Verifier steps and attacks at the verifier level (the live-server suite comes separately)."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from tokens_forge import DROP, ISSUER, NOW, claims, seg, sign_with

from rolebridge.errors import ExpiredTokenException, InvalidIdentityToken, ValidationError
from rolebridge.tokens import (
    KeyRing,
    check_audience,
    check_length,
    check_subject,
    check_times,
    parse_unverified,
    verify_signature,
    verify_token,
)
from rolebridge.tokens._jose import b64url_encode, jwk_thumbprint, public_jwk_members
from rolebridge.tokens.verifier import MESSAGES

CLIENTS = ["sts.amazonaws.com"]


@pytest.fixture(scope="module")
def ring(tmp_path_factory):
    return KeyRing.create(tmp_path_factory.mktemp("ring") / "keys")


@pytest.fixture(scope="module")
def ring_key(ring):
    """The ring's private key, to forge tokens with the issuer's own key but hostile headers."""
    path = ring.directory / f"{ring.active_kid}.pem"
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


@pytest.fixture(scope="module")
def attacker():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def verify(token: str, ring: KeyRing, now: float = NOW):
    return verify_token(token, issuer=ISSUER, client_ids=CLIENTS, jwks=ring.jwks(), now=now)


def good(ring_key, ring, **over) -> str:
    return sign_with(ring_key, {"alg": "RS256", "kid": ring.active_kid}, claims(**over))


def refused(token: str, ring: KeyRing, message: str, now: float = NOW) -> InvalidIdentityToken:
    with pytest.raises(InvalidIdentityToken) as err:
        verify(token, ring, now)
    assert err.value.message == message
    assert err.value.code == "InvalidIdentityToken" and err.value.status == 400
    return err.value


def test_good_token_verifies(ring, ring_key):
    parsed, aud = verify(good(ring_key, ring), ring)
    assert aud == "sts.amazonaws.com" and parsed.subject == "system:serviceaccount:dev:app"


# -- length ------------------------------------------------------------------------------
def test_length_bounds():
    check_length("a" * 4)
    check_length("a" * 20000)
    with pytest.raises(ValidationError) as err:
        check_length("abc")
    assert err.value.message == (
        "1 validation error detected: Value at 'webIdentityToken' failed to satisfy constraint: "
        "Member must have length greater than or equal to 4"
    )
    with pytest.raises(ValidationError) as err:
        check_length("a" * 20001)
    assert err.value.message == (
        "1 validation error detected: Value at 'webIdentityToken' failed to satisfy constraint: "
        "Member must have length less than or equal to 20000"
    )


def test_huge_token_with_valid_signature_refused(ring, ring_key):
    token = good(ring_key, ring, pad="x" * 20000)
    with pytest.raises(ValidationError):
        verify(token, ring)


# -- algorithm attacks ---------------------------------------------------------------------
def test_alg_none(ring):
    for alg in ("none", "None", "NONE"):
        token = f"{seg({'alg': alg, 'kid': ring.active_kid})}.{seg(claims())}."
        refused(token, ring, MESSAGES["malformed"])  # empty signature segment
        token = f"{seg({'alg': alg, 'kid': ring.active_kid})}.{seg(claims())}.{b64url_encode(b'x')}"
        refused(token, ring, MESSAGES["alg"])


def test_hs256_signed_with_issuer_public_key(ring):
    pem = (
        serialization.load_pem_private_key((ring.directory / f"{ring.active_kid}.pem").read_bytes(), None)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    signing_input = f"{seg({'alg': 'HS256', 'kid': ring.active_kid})}.{seg(claims())}"
    mac = hmac.HMAC(pem, hashes.SHA256())
    mac.update(signing_input.encode())
    refused(f"{signing_input}.{b64url_encode(mac.finalize())}", ring, MESSAGES["alg"])


@pytest.mark.parametrize("alg", ["PS256", "HS512", "EdDSA", "RS1", "rs256", "ES256K", ""])
def test_other_algs_refused(ring, alg):
    token = f"{seg({'alg': alg, 'kid': ring.active_kid})}.{seg(claims())}.{b64url_encode(b'sig')}"
    refused(token, ring, MESSAGES["alg"])


def test_alg_key_type_confusion(ring, ring_key):
    """An ES256 header against the issuer's RSA kid finds no compatible key."""
    ec_key = ec.generate_private_key(ec.SECP256R1())
    token = sign_with(ec_key, {"alg": "ES256", "kid": ring.active_kid}, claims())
    err = refused(token, ring, MESSAGES["signature"])
    assert "no key" in err.explanation
    # RS384 header with the issuer's RS256 key: JWK alg pins the algorithm.
    token = sign_with(ring_key, {"alg": "RS384", "kid": ring.active_kid}, claims())
    refused(token, ring, MESSAGES["signature"])


# -- key substitution ------------------------------------------------------------------------
def test_other_key_with_issuers_kid(ring, attacker):
    token = sign_with(attacker, {"alg": "RS256", "kid": ring.active_kid}, claims())
    err = refused(token, ring, MESSAGES["signature"])
    assert "does not verify" in err.explanation


@pytest.mark.parametrize(
    "kid", ["../../keys/attacker", "/etc/passwd", "x' OR '1'='1", "a\x00b", "", 5, None, ["k"]]
)
def test_kid_traversal_and_injection(ring, attacker, kid):
    header = {"alg": "RS256", "kid": kid} if kid is not None else {"alg": "RS256"}
    token = sign_with(attacker, header, claims())
    with pytest.raises(InvalidIdentityToken) as err:
        verify(token, ring)
    assert err.value.message in (MESSAGES["signature"], MESSAGES["header"])


@pytest.mark.parametrize("member", ["jwk", "jku", "x5u", "x5c"])
def test_header_embedded_keys_never_trusted(ring, attacker, member):
    jwk = dict(public_jwk_members(attacker.public_key()), kid=jwk_thumbprint(attacker.public_key()))
    value = {
        "jwk": jwk,
        "jku": "https://attacker.test/keys.json",
        "x5u": "https://attacker.test/c.pem",
        "x5c": ["MIIBattacker"],
    }[member]
    for kid in (jwk["kid"], ring.active_kid):
        token = sign_with(attacker, {"alg": "RS256", "kid": kid, member: value}, claims())
        refused(token, ring, MESSAGES["signature"])


def test_header_embedded_key_ignored_when_signed_by_issuer(ring, ring_key):
    """Ignored, not refused: the issuer's own signature still verifies."""
    token = sign_with(
        ring_key, {"alg": "RS256", "kid": ring.active_kid, "jku": "https://attacker.test/"}, claims()
    )
    verify(token, ring)


def test_crit_refused(ring, ring_key):
    for header in ({"crit": ["exp"], "exp": 1}, {"crit": []}, {"b64": False, "crit": ["b64"]}):
        token = sign_with(ring_key, {"alg": "RS256", "kid": ring.active_kid, **header}, claims())
        refused(token, ring, MESSAGES["header"])


# -- structure ---------------------------------------------------------------------------------
def test_signature_stripped_truncated_or_not_base64url(ring, ring_key):
    token = good(ring_key, ring)
    h, p, s = token.split(".")
    refused(f"{h}.{p}.", ring, MESSAGES["malformed"])
    refused(f"{h}.{p}", ring, MESSAGES["malformed"])
    from rolebridge.tokens._jose import b64url_decode

    refused(f"{h}.{p}.{b64url_encode(b64url_decode(s)[:-3])}", ring, MESSAGES["signature"])
    refused(f"{h}.{p}.{b64url_encode(b64url_decode(s) + bytes(3))}", ring, MESSAGES["signature"])
    refused(f"{h}.{p}.{s[:-1]}", ring, MESSAGES["malformed"])  # non-canonical tail bits or bad length
    refused(f"{h}.{p}.{s}=", ring, MESSAGES["malformed"])
    refused(f"{h}.{p}.{s.replace('-', '+').replace('_', '/')}x", ring, MESSAGES["malformed"])
    refused(f"{h}.{p}.{s[:10]}*{s[11:]}", ring, MESSAGES["malformed"])
    refused(f"{h}.{p}.{s}.", ring, MESSAGES["malformed"])
    refused(f" {token}", ring, MESSAGES["malformed"])


def test_non_canonical_base64_tail_refused(ring, ring_key):
    """Flipping unused low bits of the last char must not yield a second valid encoding."""
    token = good(ring_key, ring)
    h, p, s = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(s[-1])
    tweaked = alphabet[last ^ 1]
    refused(f"{h}.{p}.{s[:-1]}{tweaked}", ring, MESSAGES["malformed"])


@pytest.mark.parametrize("where", ["header", "payload"])
def test_duplicate_json_keys(ring, ring_key, where):
    header = f'{{"alg":"RS256","kid":"{ring.active_kid}"}}'
    payload = json.dumps(claims(), separators=(",", ":"))
    if where == "header":
        header = header[:-1] + ',"alg":"none"}'
    else:
        payload = payload[:-1] + ',"sub":"system:serviceaccount:kube-system:admin"}'
    signing_input = f"{seg(header)}.{seg(payload)}"
    from rolebridge.tokens._jose import ALGORITHMS

    sig = ALGORITHMS["RS256"].sign(ring_key, signing_input.encode())
    err = refused(f"{signing_input}.{b64url_encode(sig)}", ring, MESSAGES["malformed"])
    assert "duplicate" in err.explanation


@pytest.mark.parametrize("payload", ["[1,2]", '"iss"', "null", "1", "{", "NaN", '{"iss": NaN}', "\xff"])
def test_non_object_json(ring, ring_key, payload):
    signing_input = f"{seg({'alg': 'RS256', 'kid': ring.active_kid})}.{seg(payload)}"
    from rolebridge.tokens._jose import ALGORITHMS

    sig = ALGORITHMS["RS256"].sign(ring_key, signing_input.encode())
    refused(f"{signing_input}.{b64url_encode(sig)}", ring, MESSAGES["malformed"])


def test_nested_jwt_and_jwe(ring, ring_key):
    inner = good(ring_key, ring)
    nested = sign_with(ring_key, {"alg": "RS256", "kid": ring.active_kid, "cty": "JWT"}, inner)
    refused(nested, ring, MESSAGES["header"])
    nested_no_cty = sign_with(ring_key, {"alg": "RS256", "kid": ring.active_kid}, inner)
    refused(nested_no_cty, ring, MESSAGES["malformed"])
    jwe = ".".join([seg({"alg": "RSA-OAEP", "enc": "A256GCM"}), "a" * 20, "b" * 16, "c" * 40, "d" * 22])
    err = refused(jwe, ring, MESSAGES["malformed"])
    assert "JWE" in err.explanation


def test_tiny_tokens(ring):
    for token in ("....", "a.b.c", "e30.e30.e30", "e30.e30."):
        with pytest.raises((InvalidIdentityToken, ValidationError)):
            verify(token, ring)
    with pytest.raises(ValidationError):
        verify("a.b", ring)


def test_missing_or_bad_iss(ring, ring_key):
    refused(good(ring_key, ring, iss=DROP), ring, "Missing a required claim: iss")
    refused(good(ring_key, ring, iss=["https://x"]), ring, "Missing a required claim: iss")


@pytest.mark.parametrize(
    "iss", [ISSUER.upper().replace("HTTPS", "https"), ISSUER + "/", ISSUER.replace("https", "http")]
)
def test_iss_exact_match(ring, ring_key, iss):
    refused(good(ring_key, ring, iss=iss), ring, f"No OpenIDConnect provider found in your account for {iss}")


# -- audience ------------------------------------------------------------------------------------
def test_audience_rules(ring, ring_key):
    t = parse_unverified(good(ring_key, ring, aud="sts.amazonaws.com"))
    assert check_audience(t, CLIENTS) == "sts.amazonaws.com"
    t = parse_unverified(good(ring_key, ring, aud=["other", "sts.amazonaws.com"]))
    assert check_audience(t, CLIENTS) == "sts.amazonaws.com"
    assert check_audience(t, ["other", "sts.amazonaws.com"]) == "other"
    for aud in (DROP, [], ""):
        with pytest.raises(InvalidIdentityToken, match=r"^Missing a required claim: aud$"):
            check_audience(parse_unverified(good(ring_key, ring, aud=aud)), CLIENTS)
    for aud in ("sts.amazon.com", ["STS.amazonaws.com"], 5, [5], {"a": 1}):
        with pytest.raises(InvalidIdentityToken, match=r"^Incorrect token audience$"):
            check_audience(parse_unverified(good(ring_key, ring, aud=aud)), CLIENTS)


def test_missing_sub(ring, ring_key):
    refused(good(ring_key, ring, sub=DROP), ring, "Missing a required claim: sub")
    with pytest.raises(InvalidIdentityToken):
        check_subject(parse_unverified(good(ring_key, ring, sub=7)))


# -- times -----------------------------------------------------------------------------------------
def test_expired_exact_aws_message(ring, ring_key):
    """sts-cases.json C21."""
    token = good(ring_key, ring, iat=1767059505, nbf=1767059505, exp=1767145905)
    with pytest.raises(ExpiredTokenException) as err:
        verify(token, ring, now=1767225600)
    assert err.value.code == "ExpiredTokenException" and err.value.status == 400
    assert err.value.message == (
        "Token expired: current date/time 1767225600 must be before the expiration date/time1767145905"
    )


def test_expiry_grace(ring, ring_key):
    t = parse_unverified(good(ring_key, ring, exp=NOW))
    check_times(t, now=NOW + 300)
    with pytest.raises(ExpiredTokenException, match=r"^Token expired: current date/time 1767225901 must"):
        check_times(t, now=NOW + 301)


def test_token_too_old(ring, ring_key):
    t = parse_unverified(good(ring_key, ring, iat=NOW - 90000, nbf=NOW - 90000, exp=NOW + 86400))
    with pytest.raises(ExpiredTokenException) as err:
        check_times(t, now=NOW)
    assert err.value.message == "Token too old: 90000"
    t = parse_unverified(good(ring_key, ring, iat=NOW - 86400, exp=NOW + 3600))
    check_times(t, now=NOW + 300)


def test_not_yet_valid(ring, ring_key):
    refused(good(ring_key, ring, nbf=NOW + 301), ring, MESSAGES["not_yet_valid"])
    refused(
        good(ring_key, ring, iat=NOW + 10 * 365 * 86400, exp=NOW + 11 * 365 * 86400),
        ring,
        MESSAGES["not_yet_valid"],
    )
    verify(good(ring_key, ring, nbf=NOW + 300, iat=NOW + 300), ring)


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("value", [NOW + 10.5, str(NOW + 10), True, None, [NOW], 1e30])
def test_non_integer_times(ring, ring_key, claim, value):
    refused(good(ring_key, ring, **{claim: value}), ring, MESSAGES["times"])


def test_missing_exp(ring, ring_key):
    refused(good(ring_key, ring, exp=DROP), ring, "Missing a required claim: exp")


def test_huge_integer_refused(ring, ring_key):
    payload = '{"iss":"x","exp":' + "9" * 5000 + "}"
    signing_input = f"{seg({'alg': 'RS256', 'kid': ring.active_kid})}.{seg(payload)}"
    refused(signing_input + ".AAAA", ring, MESSAGES["malformed"])


# -- jwks handling -----------------------------------------------------------------------------
def test_jwks_private_members_and_garbage_ignored(ring, ring_key):
    token = good(ring_key, ring)
    jwks = {"keys": ["junk", {"kty": "RSA", "kid": "x", "n": "!!"}, *ring.jwks()["keys"]]}
    verify_signature(parse_unverified(token), jwks)
    for bad in ({}, {"keys": "x"}, [], None):
        with pytest.raises(InvalidIdentityToken):
            verify_signature(parse_unverified(token), bad)


def test_token_without_kid_tries_compatible_keys(ring, ring_key):
    token = sign_with(ring_key, {"alg": "RS256"}, claims())
    verify(token, ring)


def test_small_rsa_key_refused(ring):
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    jwk = dict(public_jwk_members(weak.public_key()), kid="weak", alg="RS256")
    token = sign_with(weak, {"alg": "RS256", "kid": "weak"}, claims())
    with pytest.raises(InvalidIdentityToken):
        verify_signature(parse_unverified(token), {"keys": [jwk]})


@pytest.mark.parametrize(
    "alg,curve", [("ES256", ec.SECP256R1()), ("ES384", ec.SECP384R1()), ("ES512", ec.SECP521R1())]
)
def test_ec_algorithms(alg, curve):
    key = ec.generate_private_key(curve)
    jwk = dict(public_jwk_members(key.public_key()), kid="k1")
    token = sign_with(key, {"alg": alg, "kid": "k1"}, claims())
    verify_signature(parse_unverified(token), {"keys": [jwk]})
    # A DER-encoded signature (what naive code produces) is refused.
    h, p, _ = token.split(".")
    der = key.sign(f"{h}.{p}".encode(), ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidIdentityToken):
        verify_signature(parse_unverified(f"{h}.{p}.{b64url_encode(der)}"), {"keys": [jwk]})


@pytest.mark.parametrize("alg", ["RS384", "RS512"])
def test_rsa_algorithms(attacker, alg):
    jwk = dict(public_jwk_members(attacker.public_key()), kid="k1")
    token = sign_with(attacker, {"alg": alg, "kid": "k1"}, claims())
    verify_signature(parse_unverified(token), {"keys": [jwk]})
