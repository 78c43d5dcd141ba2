"""Who signed this request: SigV4 over long-term keys or session-token credentials.

Scope rules as AWS checks them (DESIGN.md): IAM requests signed for ``iam`` in ``us-east-1``;
STS requests for ``sts`` in any region.
"""

from __future__ import annotations

from collections.abc import Mapping

from rolebridge import errors
from rolebridge.caller import Caller
from rolebridge.http.sigv4 import SigV4Credentials, check_scope, verify_sigv4
from rolebridge.services import Services
from rolebridge.sts.credentials import open_session

SCOPE = {"iam": ("iam", {"us-east-1"}), "sts": ("sts", None)}


def authenticate(services: Services, creds: SigV4Credentials, *, service: str, method: str, path: str,
                 query_string: str, headers: Mapping[str, str], body: bytes, now: float,
                 security_token: str | None) -> Caller:
    expected_service, regions = SCOPE.get(service, (service, None))
    check_scope(creds, expected_service=expected_service, allowed_regions=regions)
    if security_token:
        caller, secret = open_session(services.server_key, security_token, creds.access_key_id)
    else:
        found = services.long_term_key(creds.access_key_id)
        if found is None:
            raise errors.InvalidClientTokenId()
        caller, secret = found
    verify_sigv4(creds, method=method, path=path, query_string=query_string, headers=headers, body=body,
                 secret_access_key=secret, now=now, expected_service=expected_service, allowed_regions=regions)
    if caller.expiration is not None and now >= caller.expiration:
        raise errors.ExpiredToken()
    return caller
