"""Token trust: the issuer (keys, rotation, minting, discovery, JWKS) and AWS's verifier.

Pure except ``remote`` (httpx, for issuers not hosted by this server).  Import the pieces from
their modules; this package re-exports the public surface.
``remote`` is not imported here so that the pure parts load without httpx.
"""

from rolebridge.tokens.issuer import (
    DISCOVERY_PATH,
    JWKS_PATH,
    discovery_document,
    mint_service_account_token,
)
from rolebridge.tokens.keys import KeyRing
from rolebridge.tokens.verifier import (
    UnverifiedToken,
    check_audience,
    check_length,
    check_subject,
    check_times,
    parse_unverified,
    verify_signature,
    verify_token,
)

__all__ = [
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
