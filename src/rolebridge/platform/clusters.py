"""Clusters: each one an OIDC issuer (keys, discovery, JWKS) in an AWS account.

Creating a cluster also registers its issuer as an OIDC provider in the cluster's own account,
as a Conveyor installation does, so bare role names work there without further setup.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from rolebridge import errors
from rolebridge.iam.accounts import ensure_account
from rolebridge.iam.arns import provider_arn
from rolebridge.services import LOCAL_ISSUER_PREFIX, Services
from rolebridge.store.schema import Cluster, OIDCProvider
from rolebridge.tokens.issuer import DEFAULT_AUDIENCE, MAX_EXPIRES_IN, mint_service_account_token
from rolebridge.tokens.keys import MANIFEST, KeyRing

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class ClusterInfo:
    name: str
    account_id: str
    oidc_url: str
    thumbprint: str
    audience: str
    token_lifetime: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "account_id": self.account_id, "oidc_url": self.oidc_url,
                "thumbprint": self.thumbprint, "audience": self.audience,
                "provider_url": self.oidc_url.removeprefix("https://")}


def issuer_url(services: Services, name: str) -> str:
    return services.public_url + LOCAL_ISSUER_PREFIX + name


def hosted_here(services: Services, row: Cluster) -> bool:
    return row.issuer_url == issuer_url(services, row.name)


def _info(services: Services, row: Cluster) -> ClusterInfo:
    # an issuer published elsewhere (`issuer publish`) is pinned by its host's certificate, not our CA
    thumbprint = (services.ca_thumbprint or "") if hosted_here(services, row) else ""
    return ClusterInfo(row.name, row.account_id, row.issuer_url, thumbprint, row.audience, row.token_lifetime)


def create_cluster(services: Services, name: str, account_id: str, *, alg: str = "RS256",
                   audience: str = DEFAULT_AUDIENCE, token_lifetime: int = 86400,
                   now: float | None = None, external_issuer_url: str | None = None) -> ClusterInfo:
    """``external_issuer_url``: the issuer is published elsewhere (``rolebridge issuer publish``), e.g. for
    real AWS to trust; tokens carry that ``iss`` and verifiers fetch its keys from there."""
    if not NAME_RE.match(name):
        raise errors.ValidationError(
            f"Cluster name {name!r} must be a DNS label: lowercase letters, digits and '-', at most 63.")
    if not 600 <= token_lifetime <= 48 * 3600:
        raise errors.ValidationError("Token lifetime must be between 600 and 172800 seconds.")
    now = time.time() if now is None else now
    ensure_account(services.store, account_id, now=now)
    key_dir = services.store.paths.cluster_key_dir(name)
    with services.store.read() as s:
        if s.get(Cluster, name) is not None:
            raise errors.EntityAlreadyExists(f"Cluster {name} already exists.")
    url = external_issuer_url.rstrip("/") if external_issuer_url else issuer_url(services, name)
    if not url.startswith("https://") or "?" in url or "#" in url:
        raise errors.ValidationError(f"Issuer URL {url!r} must be an https:// URL without query or fragment.")
    ring = KeyRing.create(key_dir, alg=alg)
    stored = url.removeprefix("https://")
    with services.store.tx() as s:
        if s.get(Cluster, name) is not None:
            raise errors.EntityAlreadyExists(f"Cluster {name} already exists.")
        row = Cluster(name=name, account_id=account_id, issuer_url=url, audience=audience,
                      token_lifetime=token_lifetime, jwks=published_jwks(ring, now), key_dir=str(key_dir),
                      created_at=now)
        s.add(row)
        arn = provider_arn(account_id, stored)
        exists = s.execute(select(OIDCProvider).where(OIDCProvider.arn == arn)).scalar_one_or_none()
        if exists is None:
            s.add(OIDCProvider(account_id=account_id, url=stored, arn=arn, client_ids=[audience],
                               thumbprints=[services.ca_thumbprint]
                               if services.ca_thumbprint and not external_issuer_url else [],
                               tags=[{"Key": "rolebridge:cluster", "Value": name}], created_at=now))
        info = _info(services, row)
    services.invalidate()
    return info


def list_clusters(services: Services) -> list[ClusterInfo]:
    with services.store.read() as s:
        return [_info(services, r) for r in s.execute(select(Cluster).order_by(Cluster.name)).scalars()]


def get_cluster(services: Services, name: str) -> ClusterInfo:
    with services.store.read() as s:
        row = s.get(Cluster, name)
        if row is None:
            raise errors.NoSuchEntity(f"Cluster {name} does not exist. Create it with `rolebridge cluster create`.")
        return _info(services, row)


_RINGS: dict[Path, tuple[tuple[int, int, int], KeyRing]] = {}
_RINGS_LOCK = threading.Lock()


def signing_ring(directory: Path) -> KeyRing:
    """The cluster's key ring, loaded once per process and again whenever its manifest changes.

    Loading parses and validates the private keys (~50 ms for RSA): once per run in a long-lived
    server is what made minting the slowest step of `rolebridge run` (docs/run-latency.md). Every
    change of the ring (rotation, from any process) rewrites the manifest, so its identity and
    mtime are the cache key.
    """
    st = os.stat(directory / MANIFEST)
    signature = (st.st_ino, st.st_mtime_ns, st.st_size)
    with _RINGS_LOCK:
        cached = _RINGS.get(directory)
        if cached is not None and cached[0] == signature:
            return cached[1]
    ring = KeyRing.load(directory)
    with _RINGS_LOCK:
        _RINGS[directory] = (signature, ring)
    return ring


def mint_token(services: Services, cluster: str, *, namespace: str, service_account: str,
               audience: str | None = None, expires_in: int | None = None, now: float | None = None) -> str:
    info = get_cluster(services, cluster)
    ring = signing_ring(services.store.paths.cluster_key_dir(cluster))
    return mint_service_account_token(
        ring, issuer_url=info.oidc_url, namespace=namespace, service_account=service_account,
        audiences=[info.audience if audience is None else audience],
        expires_in=info.token_lifetime if expires_in is None else expires_in,
        now=time.time() if now is None else now)


def rotate_keys(services: Services, cluster: str, *, now: float | None = None) -> str:
    """New signing key; old public keys stay published until every token they signed has expired."""
    info = get_cluster(services, cluster)
    now = time.time() if now is None else now
    ring = KeyRing.load(services.store.paths.cluster_key_dir(cluster))
    # `rolebridge token --expires-in` may mint up to the issuer's maximum, so keep old keys that long
    kid = ring.rotate(now=now, retain_until=now + max(info.token_lifetime, MAX_EXPIRES_IN) + 300)
    with services.store.tx() as s:
        row = s.get(Cluster, cluster)
        assert row is not None
        row.jwks = published_jwks(ring, now)
    services.invalidate()  # every server's cached JWKS must see the new key
    return kid


def published_jwks(ring: KeyRing, now: float) -> dict[str, Any]:
    """The JWKS as stored for every server: public keys plus, beside them, until when each is kept."""
    retain = {e["kid"]: e["retain_until"] for e in ring.manifest_entries() if e.get("retain_until")}
    return {**ring.jwks(now=now), "retain_until": retain}


def publish_issuer(services: Services, cluster: str, directory: Path, *, now: float | None = None) -> list[Path]:
    """Write the cluster's discovery document and JWKS as static files for hosting at its issuer URL."""
    from rolebridge.tokens.publish import publish_static

    info = get_cluster(services, cluster)
    ring = KeyRing.load(services.store.paths.cluster_key_dir(cluster))
    return publish_static(ring, info.oidc_url, directory, now=time.time() if now is None else now)
