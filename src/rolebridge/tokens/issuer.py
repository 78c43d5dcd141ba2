"""The issuer side: OIDC discovery document and Kubernetes-shaped service-account tokens.

Paths, relative to the issuer URL (the server serves them; ``publish`` writes them as files):

* ``DISCOVERY_PATH`` = ``/.well-known/openid-configuration`` (fixed by OIDC Discovery; AWS
  fetches exactly ``<iss>/.well-known/openid-configuration``);
* ``JWKS_PATH`` = ``/keys.json``.  EKS serves ``/keys``, Kubernetes ``/openid/v1/jwks``; we
  use a ``.json`` name so a static host (a bucket, GitHub Pages) serves it as JSON without
  per-object metadata.  Relying parties follow ``jwks_uri``, so the name is ours to choose.

Tokens follow the projected service-account token of Kubernetes (``kubectl create token``):
``iss``, ``sub`` = ``system:serviceaccount:NS:SA``, ``aud`` as a *list*, integer ``exp``/``iat``/
``nbf``, a fresh ``jti``, and the ``kubernetes.io`` claim.  Lifetimes are bounded to
``MIN_EXPIRES_IN``..``MAX_EXPIRES_IN`` (10 min .. 48 h); the default is 24 h.  Note the
verifier refuses tokens older than ``verifier.MAX_TOKEN_AGE`` (24 h, AWS's "Token too old"), so a
job holding a token longer than 24 h must refresh it before then whatever its ``exp`` says.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Sequence
from typing import Any

from rolebridge.errors import InvalidParameterValue
from rolebridge.tokens._jose import ALGORITHMS
from rolebridge.tokens.keys import KeyRing

DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/keys.json"

DEFAULT_AUDIENCE = "sts.amazonaws.com"
DEFAULT_EXPIRES_IN = 86400
MIN_EXPIRES_IN = 600
MAX_EXPIRES_IN = 48 * 3600

#: Claims the minting function owns; ``extra_claims`` may not override them.
RESERVED_CLAIMS = frozenset({"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "kubernetes.io"})

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_UID_NAMESPACE = uuid.UUID("9a7cbb0e-5a0c-4b8e-8f0c-6d0c2b1f6a11")


def discovery_document(issuer_url: str, *, signing_algs: Sequence[str] | None = None) -> dict[str, Any]:
    """The OIDC discovery document for ``issuer_url`` (no trailing slash handling: used verbatim)."""
    issuer = _check_issuer_url(issuer_url)
    algs = list(signing_algs) if signing_algs else ["RS256", "ES256"]
    for alg in algs:
        if alg not in ALGORITHMS:
            raise InvalidParameterValue(f"unsupported signing algorithm {alg!r}")
    return {
        "issuer": issuer,
        "jwks_uri": issuer.rstrip("/") + JWKS_PATH,
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "kubernetes.io"],
        "scopes_supported": ["openid"],
    }


def _check_issuer_url(issuer_url: str) -> str:
    if not isinstance(issuer_url, str) or not issuer_url.startswith("https://") or len(issuer_url) > 255:
        raise InvalidParameterValue(
            f"issuer URL must be an https:// URL of at most 255 characters: {issuer_url!r}"
        )
    if any(c in issuer_url for c in "?#\\ \t\r\n") or "@" in issuer_url.split("/", 3)[2]:
        raise InvalidParameterValue(
            f"issuer URL must not carry a query, fragment or userinfo: {issuer_url!r}"
        )
    return issuer_url


def service_account_subject(namespace: str, service_account: str) -> str:
    return f"system:serviceaccount:{namespace}:{service_account}"


@functools.lru_cache(maxsize=1024)
def service_account_uid(issuer_url: str, namespace: str, service_account: str) -> str:
    """A stable UID per (issuer, namespace, service account), as a real cluster's SA object has."""
    return str(uuid.uuid5(_UID_NAMESPACE, f"{issuer_url}\n{namespace}\n{service_account}"))


def validate_names(namespace: str, service_account: str) -> None:
    """Namespaces are DNS-1123 labels (<= 63); service accounts DNS-1123 subdomains (<= 253)."""
    if not isinstance(namespace, str) or len(namespace) > 63 or not _DNS1123_LABEL.fullmatch(namespace):
        raise InvalidParameterValue(
            f"invalid namespace {namespace!r}: must be a DNS-1123 label (lowercase letters, digits, '-', "
            "at most 63 characters, starting and ending with a letter or digit)"
        )
    if (
        not isinstance(service_account, str)
        or len(service_account) > 253
        or not _DNS1123_SUBDOMAIN.fullmatch(service_account)
        or any(len(label) > 63 for label in service_account.split("."))
    ):
        raise InvalidParameterValue(
            f"invalid service account name {service_account!r}: must be a DNS-1123 subdomain (lowercase "
            "letters, digits, '-' and '.', at most 253 characters)"
        )


def mint_service_account_token(
    keyring: KeyRing,
    *,
    issuer_url: str,
    namespace: str,
    service_account: str,
    audiences: Sequence[str] = (DEFAULT_AUDIENCE,),
    expires_in: int = DEFAULT_EXPIRES_IN,
    now: float,
    extra_claims: dict[str, Any] | None = None,
    min_expires_in: int = MIN_EXPIRES_IN,
    max_expires_in: int = MAX_EXPIRES_IN,
) -> str:
    """A signed projected service-account token. ``min/max_expires_in`` let a cluster narrow the bounds."""
    issuer = _check_issuer_url(issuer_url)
    validate_names(namespace, service_account)
    if isinstance(audiences, str):
        audiences = [audiences]
    auds = list(audiences)
    if not auds or any(not isinstance(a, str) or not a or len(a) > 255 for a in auds):
        raise InvalidParameterValue(
            "audiences must be a non-empty list of non-empty strings (<= 255 characters)"
        )
    lo, hi = max(MIN_EXPIRES_IN, min_expires_in), min(MAX_EXPIRES_IN, max_expires_in)
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or not lo <= expires_in <= hi:
        raise InvalidParameterValue(f"expires_in must be an integer number of seconds between {lo} and {hi}")
    extra = dict(extra_claims or {})
    clash = RESERVED_CLAIMS.intersection(extra)
    if clash:
        raise InvalidParameterValue(f"extra_claims may not set reserved claims: {', '.join(sorted(clash))}")
    iat = int(now)
    claims: dict[str, Any] = {
        "aud": auds,
        "exp": iat + expires_in,
        "iat": iat,
        "iss": issuer,
        "jti": str(uuid.uuid4()),
        "kubernetes.io": {
            "namespace": namespace,
            "serviceaccount": {
                "name": service_account,
                "uid": service_account_uid(issuer, namespace, service_account),
            },
        },
        "nbf": iat,
        "sub": service_account_subject(namespace, service_account),
    }
    claims.update(extra)
    return keyring.sign(claims)
