"""Static hosting of an issuer: the discovery document and JWKS as files.

``rolebridge issuer publish NAME DIR`` calls ``publish_static``; the team uploads ``DIR`` so that
``DIR/<DISCOVERY_PATH>`` is served at ``<issuer_url>/.well-known/openid-configuration`` and
``DIR/<JWKS_PATH>`` at the ``jwks_uri`` (for example to a public bucket whose URL is the issuer URL),
then registers the issuer with real AWS using the thumbprint of the host's top certificate.

Only public material is written (``KeyRing.jwks``), with the retired-but-retained keys included
so tokens signed before a rotation keep verifying; republish after every rotation.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from rolebridge.tokens.issuer import DISCOVERY_PATH, JWKS_PATH, discovery_document
from rolebridge.tokens.keys import KeyRing


def _write_public(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(value, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def publish_static(
    keyring: KeyRing, issuer_url: str, directory: Path, *, now: float | None = None
) -> list[Path]:
    """Write the discovery document and JWKS under ``directory``; returns the written paths."""
    directory = Path(directory)
    discovery = discovery_document(
        issuer_url, signing_algs=sorted({k["alg"] for k in keyring.jwks()["keys"]})
    )
    paths = [directory / DISCOVERY_PATH.lstrip("/"), directory / JWKS_PATH.lstrip("/")]
    _write_public(paths[0], discovery)
    _write_public(paths[1], keyring.jwks(now=now))
    return paths
