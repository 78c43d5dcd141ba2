"""Content-MD5 and the ``x-amz-checksum-*`` family, computed while the body streams.

A ``Digests`` object is fed every byte once; at the end ``verify`` compares what the client
declared (headers, or trailers after an aws-chunked body) with what arrived. Any mismatch is
``BadDigest`` and the caller discards the temporary file, so nothing is stored.
S3 sends checksums base64-encoded: CRC32/CRC32C as 4 big-endian bytes, SHA-1/SHA-256 as digests.

CRC64NVME (which S3 itself also accepts) is refused with S3's InvalidRequest, nothing stored. That
is enough for the clients this server serves: botocore (1.44, so boto3 and the AWS CLI v1) sends
CRC32 on every request that carries a checksum by default (``request_checksum_calculation`` =
``when_supported``, ``DEFAULT_CHECKSUM_ALGORITHM = "CRC32"``); it sends CRC64NVME only when a caller
asks for it, and then only with ``awscrt`` installed (else it raises MissingDependencyException).
``tests/s3/test_checksum_defaults.py`` fails if that default changes; supporting CRC64NVME would
then take ``awscrt.checksums.crc64nvme`` (AWS's maintained implementation, what botocore uses).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

import crc32c as _crc32c

from rolebridge import errors

ALGORITHMS = ("CRC32", "CRC32C", "SHA1", "SHA256")
HEADER_PREFIX = "x-amz-checksum-"


class _Crc:
    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.value = 0

    def update(self, data: bytes | memoryview) -> None:
        self.value = self.fn(data, self.value)

    def digest(self) -> bytes:
        return (self.value & 0xFFFFFFFF).to_bytes(4, "big")


def new_hasher(algorithm: str) -> Any:
    if algorithm == "CRC32":
        return _Crc(zlib.crc32)
    if algorithm == "CRC32C":
        return _Crc(_crc32c.crc32c)
    if algorithm == "SHA1":
        return hashlib.sha1()  # noqa: S324 - S3's checksum algorithm, not a security use
    if algorithm == "SHA256":
        return hashlib.sha256()
    raise errors.InvalidRequest(f"Checksum algorithm {algorithm} is not supported.")


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def algorithm_of(header: str) -> str | None:
    name = header.lower()
    if not name.startswith(HEADER_PREFIX) or name in ("x-amz-checksum-type", "x-amz-checksum-mode",
                                                       "x-amz-checksum-algorithm"):
        return None
    return name[len(HEADER_PREFIX):].upper()


def requested(headers: Mapping[str, str], default: str | None = None) -> tuple[dict[str, str], set[str]]:
    """(declared values from headers, algorithms to compute) for one body."""
    declared: dict[str, str] = {}
    wanted: set[str] = set()
    for name, value in headers.items():
        algo = algorithm_of(name)
        if algo is not None:
            if algo not in ALGORITHMS:
                raise errors.InvalidRequest(f"Checksum algorithm {algo} is not supported.")
            declared[algo] = value
            wanted.add(algo)
    for trailer in (headers.get("x-amz-trailer") or "").split(","):
        algo = algorithm_of(trailer.strip())
        if algo is not None:
            if algo not in ALGORITHMS:
                raise errors.InvalidRequest(f"Checksum algorithm {algo} is not supported.")
            wanted.add(algo)
    sdk = headers.get("x-amz-sdk-checksum-algorithm")
    if sdk:
        wanted.add(sdk.upper())
    if default:
        wanted.add(default.upper())
    if len(declared) > 1:
        raise errors.InvalidRequest("Expecting a single x-amz-checksum- header. Multiple checksum Types "
                                    "are not allowed.")
    for algo in wanted:
        if algo not in ALGORITHMS:
            raise errors.InvalidRequest(f"Checksum algorithm {algo} is not supported.")
    return declared, wanted


class Digests:
    """MD5 always (it is the ETag), SHA-256 when the payload hash is signed, plus requested checksums."""

    def __init__(self, algorithms: Iterable[str], *, sha256: bool = False) -> None:
        self.md5 = hashlib.md5()  # noqa: S324 - the ETag, as S3 defines it
        self.sha256 = hashlib.sha256() if sha256 else None
        self.checksums = {a: new_hasher(a) for a in algorithms}
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        self.size += len(data)
        self.md5.update(data)
        if self.sha256 is not None:
            self.sha256.update(data)
        for h in self.checksums.values():
            h.update(data)

    def values(self) -> dict[str, str]:
        return {name: b64(h.digest()) for name, h in self.checksums.items()}

    def verify(self, *, content_md5: str | None, declared: Mapping[str, str], payload_sha256: str | None) -> None:
        if payload_sha256 is not None:
            assert self.sha256 is not None
            if self.sha256.hexdigest() != payload_sha256:
                raise errors.XAmzContentSHA256Mismatch()
        if content_md5 is not None:
            try:
                raw = base64.b64decode(content_md5, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise errors.InvalidDigest() from exc
            if len(raw) != 16:
                raise errors.InvalidDigest()
            if raw != self.md5.digest():
                raise errors.BadDigest()
        values = self.values()
        for algo, value in declared.items():
            if values.get(algo) != value.strip():
                raise errors.BadDigest(f"The {algo} you specified did not match the calculated checksum.")


def composite(part_checksums: list[str], algorithm: str) -> str:
    """A multipart object's checksum: the checksum of the parts' raw checksums, then ``-N``."""
    h = new_hasher(algorithm)
    for value in part_checksums:
        h.update(base64.b64decode(value))
    return f"{b64(h.digest())}-{len(part_checksums)}"
