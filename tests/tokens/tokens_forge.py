"""Helpers for building hostile tokens by hand (tests only)."""

from __future__ import annotations

import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from rolebridge.tokens._jose import ALGORITHMS, b64url_encode

ISSUER = "https://127.0.0.1:8443/clusters/alpha"
NOW = 1767225600


def claims(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "system:serviceaccount:dev:app",
        "aud": ["sts.amazonaws.com"],
        "iat": NOW - 60,
        "nbf": NOW - 60,
        "exp": NOW + 3600,
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not _DROP}


_DROP = object()
DROP = _DROP


def seg(value: Any) -> str:
    """base64url of JSON (dict) or of raw text/bytes."""
    if isinstance(value, bytes):
        return b64url_encode(value)
    if isinstance(value, str):
        return b64url_encode(value.encode())
    return b64url_encode(json.dumps(value, separators=(",", ":")).encode())


def sign_with(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    header: dict[str, Any],
    payload: dict[str, Any] | str,
    alg: str | None = None,
) -> str:
    signing_input = f"{seg(header)}.{seg(payload)}"
    sig = ALGORITHMS[alg or header["alg"]].sign(key, signing_input.encode())
    return f"{signing_input}.{b64url_encode(sig)}"
