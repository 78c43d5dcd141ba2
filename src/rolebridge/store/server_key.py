"""The server key: seals stored secrets and the temporary credentials carried in session tokens.

AES-256-GCM (``cryptography``'s AEAD) with a one-byte key id in front, so the key can be rotated:
new seals use the newest key, old seals open while their key is still listed. The keys come from
``$ROLEBRIDGE_SERVER_KEYS`` (comma-separated base64url, newest first; what several servers sharing a
PostgreSQL database must set alike) or from ``DATA_DIR/server.key`` (mode 0600, made on first use).
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rolebridge.config import write_private
from rolebridge.randomness import token_bytes

ENV_VAR = "ROLEBRIDGE_SERVER_KEYS"
_NONCE = 12


class SealError(Exception):
    """A sealed value that does not open: tampered, truncated, or sealed with an unknown key."""


_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


def _b64d(text: str) -> bytes:
    """Strict unpadded base64url: one encoding per value, so a sealed token cannot be re-spelled."""
    if not _B64URL.match(text) or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_key_text() -> str:
    """A fresh key as it appears in ``server.key`` and ``$ROLEBRIDGE_SERVER_KEYS``."""
    return _b64e(secrets.token_bytes(32))


class ServerKey:
    def __init__(self, keys: list[bytes], *, source: Path | None = None) -> None:
        self.generation = 0  # changes whenever the key set does: whoever remembers what a seal opened checks it
        self._install(keys)
        self._source = source

    def _install(self, keys: list[bytes]) -> None:
        if not keys or any(len(k) != 32 for k in keys):
            raise ValueError("server keys must be 32 bytes each")
        # key id = position counted from the oldest, so ids stay stable as keys are added in front
        self._keys = {len(keys) - 1 - i: AESGCM(k) for i, k in enumerate(keys)}
        self._current = len(keys) - 1
        self.generation += 1

    @property
    def key_ids(self) -> list[int]:
        """Ids of the keys held, newest first (the first one seals)."""
        return sorted(self._keys, reverse=True)

    @classmethod
    def load(cls, data_dir: Path) -> ServerKey:
        env = os.environ.get(ENV_VAR)
        if env:
            return cls([_b64d(part.strip()) for part in env.split(",") if part.strip()])
        path = data_dir / "server.key"
        if not path.exists():
            write_private(path, (new_key_text() + "\n").encode())
        return cls(cls._read_file(path), source=path)

    @staticmethod
    def _read_file(path: Path) -> list[bytes]:
        lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
        return [_b64d(ln) for ln in lines]

    @staticmethod
    def rotate_file(data_dir: Path) -> None:
        """Put a new key in front; older keys still open what they sealed.

        A server already running reloads the file the first time it meets a seal with an id it
        does not hold (sealed by a process that saw the new key); from then on it seals with it too.
        """
        path = data_dir / "server.key"
        old = path.read_text() if path.exists() else ""
        write_private(path, (new_key_text() + "\n" + old).encode())

    @staticmethod
    def rotated_env(value: str) -> str:
        """The next ``$ROLEBRIDGE_SERVER_KEYS``: a new key in front of the current list."""
        parts = [p.strip() for p in value.split(",") if p.strip()]
        return ",".join([new_key_text(), *parts])

    def seal(self, plaintext: bytes, *, purpose: bytes) -> str:
        nonce = token_bytes(_NONCE)
        kid = self._current
        ct = self._keys[kid].encrypt(nonce, plaintext, purpose + bytes([kid]))
        return _b64e(bytes([kid]) + nonce + ct)

    def open(self, sealed: str, *, purpose: bytes) -> bytes:
        try:
            raw = _b64d(sealed)
        except (ValueError, TypeError) as exc:
            raise SealError("not base64url") from exc
        if len(raw) < 1 + _NONCE + 16:
            raise SealError("too short")
        kid = raw[0]
        aead = self._keys.get(kid)
        if aead is None and self._source is not None and kid > self._current:
            self._reload()  # another process rotated the file since we loaded it
            aead = self._keys.get(kid)
        if aead is None:
            raise SealError("unknown key id")
        try:
            return aead.decrypt(raw[1 : 1 + _NONCE], raw[1 + _NONCE :], purpose + bytes([kid]))
        except InvalidTag as exc:
            raise SealError("authentication failed") from exc

    def _reload(self) -> None:
        try:
            keys = self._read_file(self._source) if self._source else []
        except (OSError, ValueError):
            return
        self._install(keys)
