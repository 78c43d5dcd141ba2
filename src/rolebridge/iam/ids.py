"""Unique identifiers in AWS's shapes: a 4-letter prefix and 16 (keys) or 17 (entities) base32 characters."""

from __future__ import annotations

import base64
import secrets

_ALPHABET_LEN = 16


def _random_b32(n: int) -> str:
    return base64.b32encode(secrets.token_bytes(20)).decode()[:n]


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
    return base64.b64encode(secrets.token_bytes(30)).decode()  # 40 characters, like AWS's
