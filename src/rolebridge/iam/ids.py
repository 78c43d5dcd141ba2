"""Unique identifiers in AWS's shapes: a 4-letter prefix and 16 (keys) or 17 (entities) base32 characters."""

from __future__ import annotations

import base64

from rolebridge.randomness import token_bytes

_ALPHABET_LEN = 16


_B32 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
# byte -> one base32 character from its low 5 bits: 256 is a multiple of 32, so uniform random bytes
# give uniform characters (5 bits of entropy each), without base64.b32encode's pure-Python loop
_TO_B32 = bytes(_B32[b & 31] for b in range(256))


def _random_b32(n: int) -> str:
    return token_bytes(n).translate(_TO_B32).decode("ascii")


def role_id() -> str:
    return "AROA" + _random_b32(17)


def user_id() -> str:
    return "AIDA" + _random_b32(17)


def policy_id() -> str:
    return "ANPA" + _random_b32(17)


def long_term_access_key_id() -> str:
    return "AKIA" + _random_b32(_ALPHABET_LEN)


def temporary_access_key_id() -> str:
    return "ASIA" + _random_b32(_ALPHABET_LEN)


def secret_access_key() -> str:
    return base64.b64encode(token_bytes(30)).decode()  # 40 characters, like AWS's
