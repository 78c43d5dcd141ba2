"""AWS's web-identity token checks, as separate steps STS runs in AWS's order.

STS (aws-semantics.md §1.5) does::

    check_length(raw)                      # ValidationError, part of parameter validation
    token = parse_unverified(raw)          # InvalidIdentityToken: not a compact JWS we accept
    ... provider lookup by token.issuer ... # (sts/: "No OpenIDConnect provider found ...")
    check_audience(token, client_ids)      # "Missing a required claim: aud" / "Incorrect token audience"
    verify_signature(token, jwks)          # key by kid; never a header-embedded key
    check_times(token, now=now)            # ExpiredTokenException / InvalidIdentityToken
    check_subject(token)                   # sub present (SubjectFromWebIdentityToken)

``verify_token`` runs them all for callers that have the JWKS at hand.  Anything returned by
``parse_unverified`` is *unverified*: decoded never means valid.

Messages: where AWS's text is observed (aws-semantics.md §1.4) we use it verbatim.  Elsewhere
(malformed token, bad signature, unknown ``kid``, not-yet-valid) AWS's text is unknown; we use
the short messages in ``MESSAGES`` and put the precise reason in ``explanation`` (never into the
AWS message).

Time rules (decided here, documented in aws-semantics.md §1.5 step 7 and §6 question 2):

* ``exp`` is required; ``exp``/``iat``/``nbf`` must be JSON integers (``true`` and ``1.5`` are not);
* expired when ``now > exp + EXP_GRACE`` (AWS documents a 5-minute grace) -> ExpiredTokenException
  with AWS's exact text (no space before the expiry value);
* "Token too old": AWS rejected tokens aged 153938 s and 441398 s with ``Token too old: N``;
  the threshold is unknown.  We refuse when ``now - iat > MAX_TOKEN_AGE + EXP_GRACE`` (24 h,
  the longest lifetime EKS issues, plus the same grace); N = the age in whole seconds.  Stricter
  is the safe side for an emulator: what passes here also passes a threshold of >= 24 h;
* ``nbf`` or ``iat`` more than ``CLOCK_SKEW`` (5 min) in the future -> InvalidIdentityToken.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rolebridge.errors import ExpiredTokenException, InvalidIdentityToken, validation_error
from rolebridge.memo import BoundedMemo
from rolebridge.tokens._jose import (
    ALGORITHMS,
    JoseFormatError,
    PublicKey,
    b64url_decode,
    public_key_from_jwk,
    strict_json_object,
)

MIN_TOKEN_LENGTH = 4
MAX_TOKEN_LENGTH = 20000
EXP_GRACE = 300
CLOCK_SKEW = 300
MAX_TOKEN_AGE = 86400
#: Without a ``kid`` the verifier tries at most this many compatible keys.
MAX_KEYS_WITHOUT_KID = 8

MESSAGES = {
    "malformed": "The web identity token is not a valid JWT",
    "alg": "The web identity token uses an unsupported signature algorithm",
    "header": "The web identity token header is not supported",
    "claims": "The web identity token has invalid claims",
    "issuer": "Missing a required claim: iss",
    "aud_missing": "Missing a required claim: aud",
    "aud_wrong": "Incorrect token audience",
    "sub_missing": "Missing a required claim: sub",
    "exp_missing": "Missing a required claim: exp",
    "signature": "The signature of the web identity token could not be verified",
    "not_yet_valid": "The web identity token is not yet valid",
    "times": "The web identity token has invalid time claims",
}

#: Header members we understand.  ``jku``/``x5u``/``jwk``/``x5c``/``x5t`` are tolerated but never
#: read; ``crit`` (and ``b64``, which needs it) are refused; ``cty`` JWT/JOSE (nested) is refused.
_IGNORED_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "x5t", "x5t#S256"})
_REFUSED_HEADERS = frozenset({"crit", "b64", "enc", "zip", "epk", "apu", "apv", "iv", "tag", "p2s", "p2c"})


def _invalid(kind: str, why: str) -> InvalidIdentityToken:
    return InvalidIdentityToken(MESSAGES[kind], explanation=why)


@dataclass(frozen=True)
class UnverifiedToken:
    """A compact JWS decoded but NOT verified: nothing here is trustworthy yet."""

    raw: str
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes = field(repr=False)

    @property
    def issuer(self) -> str:
        return self.claims["iss"]

    @property
    def alg(self) -> str:
        return self.header["alg"]

    @property
    def kid(self) -> str | None:
        return self.header.get("kid")

    @property
    def subject(self) -> str | None:
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) else None


# -- step 0: parameter constraint ---------------------------------------------------------------
def check_length(token: str) -> None:
    """AWS's model constraint on ``WebIdentityToken`` (4..20000). The value is sensitive, so the
    message omits it (``Value at 'webIdentityToken' ...``)."""
    n = len(token) if isinstance(token, str) else 0
    if n < MIN_TOKEN_LENGTH:
        raise validation_error(
            [
                (
                    None,
                    "webIdentityToken",
                    f"Member must have length greater than or equal to {MIN_TOKEN_LENGTH}",
                )
            ]
        )
    if n > MAX_TOKEN_LENGTH:
        raise validation_error(
            [(None, "webIdentityToken", f"Member must have length less than or equal to {MAX_TOKEN_LENGTH}")]
        )


# -- step 1: parse ------------------------------------------------------------------------------
#: Tokens parsed lately, by their exact text. A job's SDKs send the same token file again and again
#: (every process of the job, every credential refresh), and parsing is a pure function of the text,
#: so a repeat skips the base64 and strict-JSON work (~13 µs of an assume). Only the parse is
#: remembered: the signature, times and everything after are checked on every call. Only tokens
#: whose signature verified against a registered provider's keys are kept (``remember``), so what
#: unauthenticated callers send never fills it; bounded in entries and token size besides.
_PARSED_MAX = 2048
_PARSED_MAX_CHARS = 4096
_PARSED: BoundedMemo[UnverifiedToken] = BoundedMemo(_PARSED_MAX, _PARSED_MAX_CHARS)


def parse_unverified(token: str) -> UnverifiedToken:
    """Decode a compact JWS with AWS's structural rules; raises InvalidIdentityToken.

    A remembered parse (``remember``) is shared by every caller of the same text: treat the result
    as read-only.
    """
    known = _PARSED.get(token) if type(token) is str else None
    if known is not None:
        return known
    return _parse(token)


def remember(token: UnverifiedToken) -> None:
    """Keep ``token``'s parse for its next arrival: call only once its signature has verified."""
    if token.raw not in _PARSED:
        _PARSED.put(token.raw, token)


def _parse(token: str) -> UnverifiedToken:
    if not isinstance(token, str) or not token.isascii():
        raise _invalid("malformed", "token is not an ASCII string")
    if len(token) > MAX_TOKEN_LENGTH:
        raise _invalid("malformed", "token longer than 20000 characters")
    parts = token.split(".")
    if len(parts) == 5:
        raise _invalid("malformed", "JWE (5 segments) is not accepted; a signed JWT is required")
    if len(parts) != 3:
        raise _invalid("malformed", f"compact JWS has 3 segments, this token has {len(parts)}")
    h64, p64, s64 = parts
    if not h64 or not p64 or not s64:
        raise _invalid("malformed", "empty JWS segment (unsigned or detached-payload token)")
    try:
        header = strict_json_object(b64url_decode(h64))
    except JoseFormatError as exc:
        raise _invalid("malformed", f"header: {exc}") from None
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALGORITHMS:
        raise _invalid("alg", f"alg {alg!r} is not one of {', '.join(ALGORITHMS)}")
    refused = _REFUSED_HEADERS.intersection(header)
    if refused:
        raise _invalid("header", f"header member(s) {', '.join(sorted(refused))} are not accepted")
    cty = header.get("cty")
    if cty is not None and (not isinstance(cty, str) or cty.upper() in {"JWT", "JOSE", "JOSE+JSON"}):
        raise _invalid("header", f"nested tokens are not accepted (cty {cty!r})")
    kid = header.get("kid")
    if kid is not None and (not isinstance(kid, str) or not kid or len(kid) > 256):
        raise _invalid("header", "kid must be a non-empty string of at most 256 characters")
    if "typ" in header and not isinstance(header["typ"], str):
        raise _invalid("header", "typ must be a string")

    try:
        claims = strict_json_object(b64url_decode(p64))
    except JoseFormatError as exc:
        raise _invalid("malformed", f"payload: {exc}") from None
    try:
        signature = b64url_decode(s64)
    except JoseFormatError as exc:
        raise _invalid("malformed", f"signature: {exc}") from None

    iss = claims.get("iss")
    if not isinstance(iss, str) or not iss:
        raise _invalid("issuer", "the iss claim is missing or not a non-empty string")
    return UnverifiedToken(
        raw=token,
        header=header,
        claims=claims,
        signing_input=f"{h64}.{p64}".encode("ascii"),
        signature=signature,
    )


# -- step 2: audience ---------------------------------------------------------------------------
def token_audiences(token: UnverifiedToken) -> list[str]:
    """The ``aud`` claim as a list (string or list of strings); raises for other shapes."""
    if "aud" not in token.claims or token.claims["aud"] in (None, [], ""):
        raise _invalid("aud_missing", "the token has no aud claim")
    aud = token.claims["aud"]
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        return list(aud)
    raise _invalid("aud_wrong", "aud must be a string or a list of strings")


def check_audience(token: UnverifiedToken, client_ids: Sequence[str]) -> str:
    """Return the first token audience that is a registered client ID (exact, case-sensitive)."""
    registered = set(client_ids)
    for aud in token_audiences(token):
        if aud in registered:
            return aud
    raise _invalid("aud_wrong", "none of the token's audiences is a client ID of the provider")


# -- step 3: signature --------------------------------------------------------------------------
def _candidate_keys(token: UnverifiedToken, jwks: dict[str, Any]) -> list[PublicKey]:
    algorithm = ALGORITHMS[token.alg]
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list):
        raise _invalid("signature", "the issuer's JWKS has no keys list")
    kid = token.kid
    out: list[PublicKey] = []
    for jwk in keys:
        if not isinstance(jwk, dict):
            continue
        if kid is not None and jwk.get("kid") != kid:
            continue
        if jwk.get("kty") != algorithm.kty:
            continue
        if algorithm.crv is not None and jwk.get("crv") != algorithm.crv:
            continue
        if "alg" in jwk and jwk["alg"] != algorithm.name:
            continue
        if "use" in jwk and jwk["use"] != "sig":
            continue
        if "key_ops" in jwk and (not isinstance(jwk["key_ops"], list) or "verify" not in jwk["key_ops"]):
            continue
        try:
            out.append(public_key_from_jwk(jwk))
        except JoseFormatError:
            continue
    if kid is None and len(out) > MAX_KEYS_WITHOUT_KID:
        raise _invalid("signature", "token has no kid and the JWKS has too many candidate keys")
    return out


def verify_signature(token: UnverifiedToken, jwks: dict[str, Any]) -> None:
    """Verify against the issuer's JWKS only (keys chosen by ``kid``, ``kty``/``crv``/``alg``
    consistent).  Header ``jwk``/``jku``/``x5c``/``x5u`` are never consulted."""
    candidates = _candidate_keys(token, jwks)
    if not candidates:
        raise _invalid(
            "signature", f"no key in the issuer's JWKS matches kid {token.kid!r} and alg {token.alg}"
        )
    algorithm = ALGORITHMS[token.alg]
    for key in candidates:
        if algorithm.verify(key, token.signing_input, token.signature):
            return
    raise _invalid("signature", "signature does not verify with the issuer's key")


# -- step 4: times ------------------------------------------------------------------------------
def _int_claim(token: UnverifiedToken, name: str) -> int | None:
    value = token.claims.get(name)
    if value is None and name not in token.claims:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid("times", f"{name} must be an integer number of seconds, got {value!r}")
    return value


def check_times(token: UnverifiedToken, *, now: float) -> None:
    """exp (with grace), iat age ("Token too old"), nbf/iat not in the future (with skew)."""
    exp = _int_claim(token, "exp")
    iat = _int_claim(token, "iat")
    nbf = _int_claim(token, "nbf")
    if exp is None:
        raise _invalid("exp_missing", "the token has no exp claim")
    current = int(now)
    if now > exp + EXP_GRACE:
        raise ExpiredTokenException(
            f"Token expired: current date/time {current} must be before the expiration date/time{exp}",
            explanation=f"exp {exp} plus {EXP_GRACE} s grace is before now {current}",
        )
    if iat is not None and now - iat > MAX_TOKEN_AGE + EXP_GRACE:
        age = int(now - iat)
        raise ExpiredTokenException(
            f"Token too old: {age}",
            explanation=f"issued {age} s ago; at most {MAX_TOKEN_AGE} s (+{EXP_GRACE} s grace) accepted",
        )
    if nbf is not None and nbf > now + CLOCK_SKEW:
        raise _invalid("not_yet_valid", f"nbf {nbf} is more than {CLOCK_SKEW} s after now {current}")
    if iat is not None and iat > now + CLOCK_SKEW:
        raise _invalid("not_yet_valid", f"iat {iat} is more than {CLOCK_SKEW} s after now {current}")


# -- step 5: subject ----------------------------------------------------------------------------
def check_subject(token: UnverifiedToken) -> str:
    """``sub`` must be a non-empty string (it becomes SubjectFromWebIdentityToken)."""
    sub = token.claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise _invalid("sub_missing", "the token has no sub claim (or it is not a non-empty string)")
    return sub


def verify_token(
    token: str, *, issuer: str, client_ids: Sequence[str], jwks: dict[str, Any], now: float
) -> tuple[UnverifiedToken, str]:
    """All checks in AWS's order for a known issuer; returns the token and the matched audience.

    ``issuer`` must equal ``iss`` exactly (scheme, case, trailing slash), as AWS's provider lookup
    does; a mismatch raises STS's "No OpenIDConnect provider found" message.
    """
    check_length(token)
    parsed = parse_unverified(token)
    if parsed.issuer != issuer:
        raise InvalidIdentityToken(
            f"No OpenIDConnect provider found in your account for {parsed.issuer}",
            explanation=f"iss {parsed.issuer!r} is not {issuer!r}",
        )
    audience = check_audience(parsed, client_ids)
    verify_signature(parsed, jwks)
    check_times(parsed, now=now)
    check_subject(parsed)
    return parsed, audience
