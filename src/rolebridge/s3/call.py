"""One S3 request as the operations see it, and the one way to consume its body.

``S3Call`` carries the verified caller (``auth``), the address, headers and query, and the raw
ASGI request for streaming. ``consume`` is the body pipeline every operation uses: aws-chunked
decoding (with chunk signatures) when the payload mode says so, a size cap, digests (MD5 for the
ETag, the signed SHA-256, ``x-amz-checksum-*``), and the final verification. It raises before
returning if anything does not match; the caller then discards what it wrote.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import ClientDisconnect, Request

from rolebridge import errors
from rolebridge.context import CallContext
from rolebridge.s3.addressing import Address
from rolebridge.s3.auth import STREAMING_MODES, UNSIGNED, Authenticated
from rolebridge.s3.checksums import Digests, requested
from rolebridge.s3.chunked import ChunkedDecoder

if TYPE_CHECKING:
    from rolebridge.s3.storage import BlobStore

MAX_XML_BODY = 2 * 1024 * 1024


@dataclass
class S3Call:
    ctx: CallContext
    auth: Authenticated
    address: Address
    method: str
    headers: Mapping[str, str]  # lower-case names
    query: Mapping[str, str]  # decoded, first value of each name
    request: Request
    blobs: BlobStore
    operation: str = ""

    @property
    def bucket(self) -> str:
        assert self.address.bucket is not None
        return self.address.bucket

    @property
    def key(self) -> str:
        assert self.address.key is not None
        return self.address.key


async def _raw(request: Request) -> AsyncIterator[bytes]:
    try:
        async for piece in request.stream():
            if piece:
                yield piece
    except ClientDisconnect as exc:
        raise errors.IncompleteBody() from exc


async def consume(call: S3Call, sink: Callable[[bytes], None], *, limit: int,
                  default_algorithm: str | None = None) -> Digests:
    """Stream the body into ``sink``; return its digests once every check passed."""
    headers = call.headers
    mode = call.auth.payload
    declared, algorithms = requested(headers, default_algorithm)
    signed_sha = mode if mode not in (UNSIGNED, *STREAMING_MODES) else None
    digests = Digests(algorithms, sha256=signed_sha is not None)
    chunked = mode in STREAMING_MODES or "aws-chunked" in headers.get("content-encoding", "")
    expected_len: int | None = None
    raw_len = headers.get("x-amz-decoded-content-length" if chunked else "content-length")
    if raw_len is not None:
        if not raw_len.isdigit():
            raise errors.InvalidArgument("Content-Length is not a valid number.")
        expected_len = int(raw_len)
        if expected_len > limit:
            raise errors.EntityTooLarge()
    decoder = ChunkedDecoder(call.auth) if chunked else None
    source = decoder.decode(_raw(call.request)) if decoder else _raw(call.request)
    async for data in source:
        if digests.size + len(data) > limit or (expected_len is not None and digests.size + len(data) > expected_len):
            raise errors.EntityTooLarge() if digests.size + len(data) > limit else errors.IncompleteBody(
                "The request body is longer than its declared length.")
        digests.update(data)
        sink(data)
    if expected_len is not None and digests.size != expected_len:
        raise errors.IncompleteBody()
    if decoder is not None:
        for name, value in decoder.trailers.items():
            if name.startswith("x-amz-checksum-"):
                declared[name[len("x-amz-checksum-"):].upper()] = value
    digests.verify(content_md5=headers.get("content-md5"), declared=declared, payload_sha256=signed_sha)
    return digests


async def read_small(call: S3Call, limit: int = MAX_XML_BODY) -> bytes:
    """A request document (policy, XML): same checks, kept in memory under ``limit``."""
    parts: list[bytes] = []
    await consume(call, parts.append, limit=limit)
    return b"".join(parts)
