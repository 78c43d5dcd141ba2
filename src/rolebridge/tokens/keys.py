"""A cluster's signing key ring: private keys in files (0600), public keys as a JWKS.

Layout of the ring's directory (created 0700)::

    ring.json          manifest: {"version": 1, "alg": ..., "active": kid,
                                  "keys": [{"kid", "alg", "created_at", "retain_until"}]}
    <kid>.pem          PKCS#8 private key, mode 0600, one per key

The ``kid`` is the key's RFC 7638 SHA-256 thumbprint (base64url), so it is derived from the key
and cannot collide or be chosen; it is also a safe file name (``[A-Za-z0-9_-]{43}``), which
``load`` re-checks before touching the file system.

Rotation keeps the previous public keys in the JWKS until ``retain_until`` (the caller passes
"now + longest token lifetime + grace"), so tokens signed before a rotation keep verifying
until they expire; ``prune(now)`` (also run by ``rotate``) deletes keys past that time, after
which their tokens stop verifying.  ``jwks()`` is public-only: there is no way to export a
private key through it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from rolebridge.config import write_private
from rolebridge.tokens._jose import (
    ALGORITHMS,
    PrivateKey,
    b64url_encode,
    canonical_json,
    jwk_thumbprint,
    public_jwk_members,
)

#: Algorithms a ring can be created with (the verifier accepts more, see ``_jose.ALGORITHMS``).
SIGNING_ALGORITHMS = ("RS256", "ES256")
MANIFEST = "ring.json"
_KID = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass
class _Entry:
    kid: str
    alg: str
    created_at: float | None
    retain_until: float | None  # None: active or retained without limit
    key: PrivateKey


def _generate(alg: str) -> PrivateKey:
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unsupported signing algorithm {alg!r}; choose one of {', '.join(SIGNING_ALGORITHMS)}")


class KeyRing:
    """Signing keys of one issuer. Create with ``create``, reopen with ``load``."""

    def __init__(self, directory: Path, alg: str, active: str, entries: list[_Entry]) -> None:
        self.directory = directory
        self.alg = alg
        self._active = active
        self._entries = entries

    # -- construction -------------------------------------------------------------------
    @classmethod
    def create(cls, directory: Path, alg: str = "RS256") -> KeyRing:
        if alg not in SIGNING_ALGORITHMS:
            raise ValueError(
                f"unsupported signing algorithm {alg!r}; choose one of {', '.join(SIGNING_ALGORITHMS)}"
            )
        directory = Path(directory)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        if (directory / MANIFEST).exists():
            raise FileExistsError(f"a key ring already exists in {directory}")
        key = _generate(alg)
        kid = jwk_thumbprint(key.public_key())
        ring = cls(directory, alg, kid, [_Entry(kid, alg, None, None, key)])
        ring._store_key(ring._entries[0])
        ring._save()
        return ring

    @classmethod
    def load(cls, directory: Path) -> KeyRing:
        directory = Path(directory)
        manifest = json.loads((directory / MANIFEST).read_text("utf-8"))
        if manifest.get("version") != 1:
            raise ValueError(f"unknown key ring version in {directory}")
        entries = []
        for item in manifest["keys"]:
            kid, alg = item["kid"], item["alg"]
            if not isinstance(kid, str) or not _KID.fullmatch(kid) or alg not in SIGNING_ALGORITHMS:
                raise ValueError(f"corrupt key ring manifest in {directory}")
            path = directory / f"{kid}.pem"
            if path.stat().st_mode & 0o077:
                raise PermissionError(f"{path} is readable by others; expected mode 0600")
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
                raise ValueError(f"{path} is not an RSA or EC private key")
            if jwk_thumbprint(key.public_key()) != kid:
                raise ValueError(f"{path} does not match its kid")
            entries.append(_Entry(kid, alg, item.get("created_at"), item.get("retain_until"), key))
        active = manifest["active"]
        if active not in {e.kid for e in entries}:
            raise ValueError(f"active key missing from key ring in {directory}")
        return cls(directory, manifest["alg"], active, entries)

    # -- persistence --------------------------------------------------------------------
    def _store_key(self, entry: _Entry) -> None:
        pem = entry.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_private(self.directory / f"{entry.kid}.pem", pem)

    def _save(self) -> None:
        manifest = {
            "version": 1,
            "alg": self.alg,
            "active": self._active,
            "keys": [
                {"kid": e.kid, "alg": e.alg, "created_at": e.created_at, "retain_until": e.retain_until}
                for e in self._entries
            ],
        }
        write_private(self.directory / MANIFEST, json.dumps(manifest, indent=2).encode("utf-8"))

    # -- public surface -----------------------------------------------------------------
    def manifest_entries(self) -> list[dict[str, Any]]:
        """Each key's public bookkeeping (kid, alg, created_at, retain_until); no key material."""
        return [{"kid": e.kid, "alg": e.alg, "created_at": e.created_at, "retain_until": e.retain_until}
                for e in self._entries]

    @property
    def active_kid(self) -> str:
        return self._active

    @property
    def kids(self) -> list[str]:
        return [e.kid for e in self._entries]

    def jwks(self, *, now: float | None = None) -> dict[str, Any]:
        """Public keys only: the active key and every retired key still retained.

        With ``now``, retired keys whose ``retain_until`` has passed are left out even if
        ``prune`` has not run yet.
        """
        keys = []
        for e in self._entries:
            if now is not None and e.retain_until is not None and e.retain_until <= now:
                continue
            jwk: dict[str, Any] = dict(public_jwk_members(e.key.public_key()))
            jwk.update({"kid": e.kid, "alg": e.alg, "use": "sig"})
            keys.append(jwk)
        return {"keys": keys}

    def sign(self, claims: dict[str, Any]) -> str:
        """Compact JWS of ``claims`` with the active key; header ``{alg, kid}`` as Kubernetes does."""
        entry = next(e for e in self._entries if e.kid == self._active)
        header = {"alg": entry.alg, "kid": entry.kid}
        signing_input = f"{b64url_encode(canonical_json(header))}.{b64url_encode(canonical_json(claims))}"
        signature = ALGORITHMS[entry.alg].sign(entry.key, signing_input.encode("ascii"))
        return f"{signing_input}.{b64url_encode(signature)}"

    def rotate(self, *, now: float, retain_until: float, alg: str | None = None) -> str:
        """Make a new active key; keep the old public key until ``retain_until``. Returns the new kid."""
        if retain_until < now:
            raise ValueError("retain_until must not be before now")
        new_alg = alg or self.alg
        key = _generate(new_alg)
        kid = jwk_thumbprint(key.public_key())
        entry = _Entry(kid, new_alg, now, None, key)
        self._store_key(entry)
        for e in self._entries:
            if e.kid == self._active:
                e.retain_until = retain_until
        self._entries.append(entry)
        self._active = kid
        self.alg = new_alg
        gone = self._drop_expired(now)
        self._save()  # the manifest stops naming a key before its file goes
        self._unlink(gone)
        return kid

    def prune(self, *, now: float) -> list[str]:
        """Delete retired keys whose ``retain_until`` has passed; returns their kids."""
        gone = self._drop_expired(now)
        if gone:
            self._save()
            self._unlink(gone)
        return gone

    def _drop_expired(self, now: float) -> list[str]:
        gone = [
            e.kid
            for e in self._entries
            if e.kid != self._active and e.retain_until is not None and e.retain_until <= now
        ]
        self._entries = [e for e in self._entries if e.kid not in gone]
        return gone

    def _unlink(self, kids: list[str]) -> None:
        for kid in kids:
            (self.directory / f"{kid}.pem").unlink(missing_ok=True)
