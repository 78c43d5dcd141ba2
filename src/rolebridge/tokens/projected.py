"""Projected token files for jobs: atomic 0600 writes and the kubelet's refresh schedule.

The kubelet rewrites a projected token when 80 % of its lifetime has passed (or when it is
older than 24 h); a job that outlives its token keeps working because SDKs re-read
``AWS_WEB_IDENTITY_TOKEN_FILE`` on every credential refresh.  The runner uses ``refresh_at`` to
schedule rewrites and ``write_token_file`` to replace the file atomically, so a reader never sees
a half-written token.
"""

from __future__ import annotations

from pathlib import Path

from rolebridge.config import write_private
from rolebridge.tokens.verifier import MAX_TOKEN_AGE, parse_unverified

REFRESH_FRACTION = 0.8


def refresh_at(token: str) -> float:
    """When to replace ``token``: 80 % of its lifetime, and before it is MAX_TOKEN_AGE old."""
    claims = parse_unverified(token).claims
    iat, exp = int(claims["iat"]), int(claims["exp"])
    return min(iat + REFRESH_FRACTION * (exp - iat), iat + REFRESH_FRACTION * MAX_TOKEN_AGE)


def write_token_file(path: Path, token: str) -> None:
    """Replace ``path`` with ``token`` atomically; the file is 0600 from its first byte."""
    write_private(Path(path), token.encode("ascii"))
