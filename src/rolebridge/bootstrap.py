"""Open everything a command needs from a data dir: store, TLS material, public URL, services."""

from __future__ import annotations

from urllib.parse import urlsplit

from rolebridge.config import DEFAULT_PORT, Paths, resolve_paths
from rolebridge.services import Services
from rolebridge.store import open_store
from rolebridge.tls import ca_thumbprint, ensure_ca

PUBLIC_URL = "public_url"


def open_services(data_dir: str | None = None, database_url: str | None = None, *,
                  public_url: str | None = None, fix_public_url: bool = False) -> Services:
    """``public_url`` is only a proposal: the first server start or cluster create fixes it (DESIGN.md)."""
    paths = resolve_paths(data_dir, database_url)
    store = open_store(paths)
    proposal = (public_url or f"https://127.0.0.1:{DEFAULT_PORT}").rstrip("/")
    if fix_public_url or public_url:
        fixed = store.setdefault_setting(PUBLIC_URL, proposal)
    else:
        fixed = store.get_setting(PUBLIC_URL) or proposal
    host = urlsplit(fixed).hostname or "127.0.0.1"
    ensure_ca(paths, [host])
    return Services(store, public_url=fixed, ca_thumbprint=ca_thumbprint(paths), extra_ca_bundle=str(paths.ca_pem))


def paths_of(services: Services) -> Paths:
    return services.store.paths
