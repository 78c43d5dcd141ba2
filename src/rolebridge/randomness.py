"""Random bytes and uuid4 strings from the OS, fetched a block at a time.

Why not ``secrets.token_bytes``/``uuid.uuid4`` directly: a call to STS needs five or so random
values (request and event IDs, access key ID, secret, the session token's AES-GCM nonce), each a
``getrandom`` system call plus ``uuid.UUID``'s integer round trip. Taking them from a 4 KiB block
of ``os.urandom`` makes that one system call per ~250 values. The bytes are the kernel's CSPRNG
output either way; none is ever handed out twice:

- each thread has its own block (no lock on the event loop);
- a forked child must never reuse its parent's unused bytes (a repeated GCM nonce would be fatal),
  so blocks are dropped in the child (``os.register_at_fork``) and, as a second guard, a block
  remembers the process that filled it (``rolebridge.pid``: no system call per value).
"""

from __future__ import annotations

import os
import threading

from rolebridge import pid as _pid

BLOCK_BYTES = 4096
_local = threading.local()


def _forget_blocks() -> None:
    global _local
    _local = threading.local()


os.register_at_fork(after_in_child=_forget_blocks)


def token_bytes(n: int) -> bytes:
    """``n`` bytes from the OS's CSPRNG (as ``secrets.token_bytes``)."""
    if n > BLOCK_BYTES // 4:
        return os.urandom(n)
    local = _local
    block: bytes | None = getattr(local, "block", None)
    pos: int = getattr(local, "pos", 0)
    pid = _pid.current()
    if block is None or pos + n > len(block) or local.pid != pid:
        block, pos = os.urandom(BLOCK_BYTES), 0
        local.block, local.pid = block, pid
    local.pos = pos + n
    return block[pos:pos + n]


def uuid4() -> str:
    """A random UUID (version 4, RFC 4122 variant) as ``str(uuid.uuid4())`` writes it."""
    b = bytearray(token_bytes(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def uuid7(unix_seconds: float) -> str:
    """A time-ordered random UUID (version 7, RFC 9562): 48 bits of Unix milliseconds, then 74
    random bits; as ``str(uuid.UUID)`` writes it.

    For identifiers that are index keys of an ever-growing table (audit ``eventID``): random
    version-4 keys land on random pages of the unique index, so each insert cost more the bigger
    the table (13 -> 42 µs per event at 2 million events), while time-ordered keys land at its end
    (10 µs at 2 million). The time is the caller's (the event's own), not read here.
    """
    try:
        ms = int(unix_seconds * 1000)
    except (ValueError, OverflowError):  # NaN or infinite: no time to order by
        ms = 0
    ms = max(0, min(ms, (1 << 48) - 1))
    b = bytearray(ms.to_bytes(6, "big") + token_bytes(10))
    b[6] = (b[6] & 0x0F) | 0x70
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
