"""Bearer tokens for the platform API, derived from an account's access keys.

The platform API is JSON over HTTPS, not the AWS Query protocol, so instead of SigV4 on every
request a client derives a short-lived bearer token from the same keys it uses for IAM::

    rbk1.<ACCESS_KEY_ID>.<EXPIRES_UNIX>.<base64url(HMAC-SHA256(secret, "rbk1.<ACCESS_KEY_ID>.<EXPIRES_UNIX>"))>

The server recomputes the MAC with the key's secret (sealed in the store), so a token proves
possession of the secret without sending it, names its account, and dies at ``EXPIRES_UNIX``
(at most ``MAX_TTL`` ahead). Disabling or deleting the key kills every token derived from it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from rolebridge import errors
from rolebridge.caller import Caller
from rolebridge.services import Services

PREFIX = "rbk1"
DEFAULT_TTL = 900
MAX_TTL = 12 * 3600


def _mac(secret: str, message: str) -> str:
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def derive_token(access_key_id: str, secret_access_key: str, *, ttl: int = DEFAULT_TTL,
                 now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + ttl)
    message = f"{PREFIX}.{access_key_id}.{expires}"
    return f"{message}.{_mac(secret_access_key, message)}"


def verify_token(services: Services, token: str, *, now: float) -> Caller:
    """The caller a bearer token stands for; AWS-style auth errors otherwise (fail closed)."""
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != PREFIX or not parts[2].isdigit() or len(parts[2]) > 12:
        raise errors.IncompleteSignature("The bearer token is not a rolebridge platform token (rbk1.KEY.EXP.MAC).")
    _, akid, exp_text, mac = parts
    found = services.long_term_key(akid)
    if found is None:
        raise errors.InvalidClientTokenId()
    caller, secret = found
    expected = _mac(secret, f"{PREFIX}.{akid}.{exp_text}")
    if not hmac.compare_digest(expected.encode(), mac.encode()):
        raise errors.SignatureDoesNotMatch("The bearer token's signature does not match the access key's secret.")
    expires = int(exp_text)
    if expires <= now:
        raise errors.ExpiredToken("The bearer token has expired; derive a new one.")
    if expires > now + MAX_TTL + 60:
        raise errors.AccessDenied(f"The bearer token lives longer than {MAX_TTL} seconds.")
    return caller
