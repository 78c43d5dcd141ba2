"""The small JOSE core we own: strict base64url, strict JSON, the algorithm table, JWK <-> key.

Why not a JOSE library's ``decode``: AWS's rules are narrower than any library default (no
``none``, no HMAC, no header-embedded keys, no ``crit``, integer times) and the errors must be
AWS's.  Owning these ~200 lines keeps every acceptance decision visible and table-driven; the
cryptography itself is ``cryptography``'s.

Everything here is strict by construction:

* base64url: alphabet ``[A-Za-z0-9_-]`` only, no padding, canonical (the unused low bits of the
  last character must be zero, so one value has exactly one encoding and signatures are not
  malleable through re-encoding);
* JSON: UTF-8, duplicate keys refused, ``NaN``/``Infinity`` refused, numbers bounded, no lone
  surrogates (``\\ud800``);
* algorithms: an allow-list of model objects (``ALGORITHMS``); anything absent is refused.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature


class JoseFormatError(ValueError):
    """Internal: the input is not well-formed JOSE. Callers translate it into an AWS error."""




def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_TO_STD = bytes.maketrans(b"-_", b"+/")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64url_decode(text: str) -> bytes:
    """Strict, canonical base64url without padding.

    Canonical: in a 2- or 3-character final group the bits that encode no byte must be zero,
    so each byte string has exactly one accepted encoding.
    """
    if not isinstance(text, str):
        raise JoseFormatError("not base64url")
    rem = len(text) % 4
    # a2b_base64's strict mode refuses every character outside the standard alphabet (whitespace
    # included) and misplaced padding; what it would accept beyond base64url is "+", "/" and "=",
    # refused here first (cheaper than a regular expression over the whole segment)
    if rem == 1 or "+" in text or "/" in text or "=" in text:
        raise JoseFormatError("not base64url")
    if rem:
        last = _ALPHABET.find(text[-1])
        if last < 0:
            raise JoseFormatError("not base64url")
        if last & (0x0F if rem == 2 else 0x03):
            raise JoseFormatError("non-canonical base64url")
    try:
        raw = text.encode("ascii")
        return binascii.a2b_base64(raw.translate(_TO_STD) + b"=" * (-rem % 4), strict_mode=True)
    except (binascii.Error, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise JoseFormatError("not base64url") from exc


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise JoseFormatError(f"duplicate JSON member {key!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise JoseFormatError(f"JSON constant {name} is not allowed")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 64:
        raise JoseFormatError("JSON integer too large")
    return int(text)


@functools.cache
def _strict_decoder() -> json.JSONDecoder:
    """One decoder for every strict parse (``json.loads`` with hooks builds a new one per call)."""
    return json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constant, parse_int=_bounded_int)


def strict_json_object(data: bytes) -> dict[str, Any]:
    """Parse a JSON object: UTF-8, no duplicate keys, no NaN/Infinity, bounded integers."""
    try:
        text = data.decode("utf-8")
        value = _strict_decoder().decode(text)
    except JoseFormatError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise JoseFormatError("not JSON") from exc
    if not isinstance(value, dict):
        raise JoseFormatError("JSON value is not an object")
    # JSON's \uD800-\uDFFF escapes can name a lone surrogate, which is no character at all: it cannot
    # be stored, compared with a provider URL or written to XML. Raw UTF-8 cannot carry one (the
    # decode above refuses it), so only text with such an escape needs the walk.
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise JoseFormatError("JSON string with a lone surrogate (\\uD800-\\uDFFF)")
    return value


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(value: Any) -> bool:
    """Any string (key or value) that UTF-8 cannot encode; iterative, as a parsed value may nest deep."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def canonical_json(value: Any) -> bytes:
    """Compact, sorted JSON as used for JWS segments we produce and RFC 7638 thumbprints."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8")


# -- algorithms -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Algorithm:
    """One allowed JWS algorithm: which key type and parameters it needs and how it signs."""

    name: str
    kty: str  # "RSA" | "EC"
    hash: type[hashes.HashAlgorithm]
    crv: str | None = None  # EC only
    coord_size: int = 0  # EC only: bytes per coordinate (and per r/s half of the signature)

    def verify(
        self, key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey, signing_input: bytes, signature: bytes
    ) -> bool:
        """True iff ``signature`` is valid; never raises for a bad signature."""
        try:
            if self.kty == "RSA":
                if not isinstance(key, rsa.RSAPublicKey) or len(signature) != (key.key_size + 7) // 8:
                    return False
                key.verify(signature, signing_input, padding.PKCS1v15(), self.hash())
                return True
            if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != _CURVES[self.crv].name:
                return False
            if len(signature) != 2 * self.coord_size:
                return False
            r = int.from_bytes(signature[: self.coord_size], "big")
            s = int.from_bytes(signature[self.coord_size :], "big")
            key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(self.hash()))
            return True
        except (InvalidSignature, ValueError):
            return False

    def sign(self, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, signing_input: bytes) -> bytes:
        if self.kty == "RSA":
            assert isinstance(key, rsa.RSAPrivateKey)
            return key.sign(signing_input, padding.PKCS1v15(), self.hash())
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(self.hash())))
        return r.to_bytes(self.coord_size, "big") + s.to_bytes(self.coord_size, "big")


_CURVES: dict[str | None, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
}

#: The only algorithms AWS STS accepts for web identity tokens (botocore model doc).
ALGORITHMS: dict[str, Algorithm] = {
    "RS256": Algorithm("RS256", "RSA", hashes.SHA256),
    "RS384": Algorithm("RS384", "RSA", hashes.SHA384),
    "RS512": Algorithm("RS512", "RSA", hashes.SHA512),
    "ES256": Algorithm("ES256", "EC", hashes.SHA256, "P-256", 32),
    "ES384": Algorithm("ES384", "EC", hashes.SHA384, "P-384", 48),
    "ES512": Algorithm("ES512", "EC", hashes.SHA512, "P-521", 66),
}

#: Smallest RSA modulus we accept for verification (and the size we generate).
MIN_RSA_BITS = 2048


# -- JWK ----------------------------------------------------------------------------------------
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _int_to_b64(value: int, length: int | None = None) -> str:
    size = length if length is not None else max(1, (value.bit_length() + 7) // 8)
    return b64url_encode(value.to_bytes(size, "big"))


def public_jwk_members(key: PublicKey) -> dict[str, str]:
    """The RFC 7638 required members of a public key (exactly what the thumbprint hashes)."""
    if isinstance(key, rsa.RSAPublicKey):
        nums = key.public_numbers()
        return {"e": _int_to_b64(nums.e), "kty": "RSA", "n": _int_to_b64(nums.n)}
    if isinstance(key, ec.EllipticCurvePublicKey):
        crv = {c.name: n for n, c in _CURVES.items()}.get(key.curve.name)
        if crv is None:
            raise JoseFormatError(f"unsupported curve {key.curve.name}")
        size = (key.curve.key_size + 7) // 8
        nums = key.public_numbers()
        return {"crv": crv, "kty": "EC", "x": _int_to_b64(nums.x, size), "y": _int_to_b64(nums.y, size)}
    raise JoseFormatError("unsupported key type")


def jwk_thumbprint(key: PublicKey) -> str:
    """RFC 7638 SHA-256 thumbprint, base64url: the ``kid`` of our keys."""
    return b64url_encode(hashlib.sha256(canonical_json(public_jwk_members(key))).digest())


def public_key_from_jwk(jwk: dict[str, Any]) -> PublicKey:
    """Build a public key from a JWK's public members only (``d`` and friends are ignored).

    Results are cached by the public members themselves (never by ``kid``), so a cached key
    is exactly the key those members describe.
    """
    kty = jwk.get("kty")
    if kty == "RSA":
        members: tuple[Any, ...] = ("RSA", jwk.get("n"), jwk.get("e"))
    elif kty == "EC":
        members = ("EC", jwk.get("crv"), jwk.get("x"), jwk.get("y"))
    else:
        raise JoseFormatError(f"unsupported kty {kty!r}")
    if not all(isinstance(m, str) for m in members):
        raise JoseFormatError("malformed JWK")
    return _public_key(members)


@functools.lru_cache(maxsize=512)
def _public_key(members: tuple[str, ...]) -> PublicKey:
    try:
        if members[0] == "RSA":
            n_raw, e_raw = b64url_decode(members[1]), b64url_decode(members[2])
            n, e = int.from_bytes(n_raw, "big"), int.from_bytes(e_raw, "big")
            if not MIN_RSA_BITS <= n.bit_length() <= 8192 or e < 3 or e % 2 == 0 or len(e_raw) > 8:
                raise JoseFormatError("unacceptable RSA parameters")
            return rsa.RSAPublicNumbers(e, n).public_key()
        curve = _CURVES.get(members[1])
        if curve is None:
            raise JoseFormatError("unsupported curve")
        size = (curve.key_size + 7) // 8
        x_raw, y_raw = b64url_decode(members[2]), b64url_decode(members[3])
        if len(x_raw) != size or len(y_raw) != size:
            raise JoseFormatError("bad EC coordinate length")
        x, y = int.from_bytes(x_raw, "big"), int.from_bytes(y_raw, "big")
        return ec.EllipticCurvePublicNumbers(x, y, curve).public_key()  # checks the point is on the curve
    except JoseFormatError:
        raise
    except (TypeError, ValueError) as exc:
        raise JoseFormatError("malformed JWK") from exc
