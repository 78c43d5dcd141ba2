"""The ``aws-chunked`` content encoding: chunk framing, chunk signatures, trailing headers.

Bodies sent with ``x-amz-content-sha256: STREAMING-*`` are framed as
``<hex size>[;chunk-signature=<sig>]\\r\\n<data>\\r\\n`` ... ``0[;chunk-signature=<sig>]\\r\\n``
followed by optional trailers (``x-amz-checksum-crc32:<b64>``, and for the signed-trailer mode
``x-amz-trailer-signature:<sig>``) and an empty line. Each chunk signature chains on the previous
one, starting from the request's own signature (the seed), so a reordered, truncated or altered
chunk fails. Data is yielded as it arrives: memory stays bounded by the network read size, and
the caller stores nothing until the decoder has reached the end without raising.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator

from rolebridge import errors
from rolebridge.s3.auth import STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, Authenticated

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_LINE = 4096
MAX_TRAILERS = 16 * 1024


class ChunkedDecoder:
    def __init__(self, auth: Authenticated) -> None:
        self.auth = auth
        self.signed = auth.payload in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER)
        self.previous = auth.seed_signature
        self.trailers: dict[str, str] = {}
        creds = auth.creds
        self._scope = creds.scope if creds else ""
        self._date = creds.amz_date if creds else ""

    def _check(self, kind: str, claimed: str | None, payload_hash: str) -> None:
        if not self.signed:
            return
        if claimed is None:
            raise errors.IncompleteSignature("The request is missing a chunk signature.")
        to_sign = "\n".join([f"AWS4-HMAC-SHA256-{kind}", self._date, self._scope, self.previous,
                             *([EMPTY_SHA256] if kind == "PAYLOAD" else []), payload_hash])
        expected = hmac.new(self.auth.signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), claimed.encode()):
            raise errors.SignatureDoesNotMatch(
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method.")
        self.previous = expected

    @staticmethod
    def _header(line: bytes) -> tuple[int, str | None]:
        size_part, _, ext = line.partition(b";")
        try:
            size = int(size_part.strip(), 16)
        except ValueError as exc:
            raise errors.IncompleteBody("Invalid chunk header") from exc
        sig = None
        if ext:
            name, _, value = ext.decode("latin-1").partition("=")
            if name.strip() == "chunk-signature":
                sig = value.strip()
        return size, sig

    async def decode(self, source: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        buf = bytearray()
        state = "header"
        remaining = 0
        chunk_sig: str | None = None
        chunk_hash = hashlib.sha256()
        trailer_lines: list[bytes] = []
        trailer_bytes = 0
        done = False
        async for piece in source:
            buf += piece
            while buf and not done:
                if state == "header":
                    end = buf.find(b"\r\n")
                    if end < 0:
                        if len(buf) > MAX_LINE:
                            raise errors.IncompleteBody("Chunk header too long")
                        break
                    remaining, chunk_sig = self._header(bytes(buf[:end]))
                    del buf[: end + 2]
                    chunk_hash = hashlib.sha256()
                    if remaining == 0:
                        self._check("PAYLOAD", chunk_sig, EMPTY_SHA256)
                        state = "trailer"
                    else:
                        state = "data"
                elif state == "data":
                    take = min(remaining, len(buf))
                    data = bytes(buf[:take])
                    del buf[:take]
                    remaining -= take
                    if self.signed:
                        chunk_hash.update(data)
                    yield data
                    if remaining == 0:
                        state = "crlf"
                elif state == "crlf":
                    if len(buf) < 2:
                        break
                    if buf[:2] != b"\r\n":
                        raise errors.IncompleteBody("Chunk data is not followed by CRLF")
                    del buf[:2]
                    self._check("PAYLOAD", chunk_sig, chunk_hash.hexdigest())
                    state = "header"
                else:  # trailer lines until an empty line
                    end = buf.find(b"\r\n")
                    if end < 0:
                        if len(buf) > MAX_LINE:
                            raise errors.IncompleteBody("Trailer line too long")
                        break
                    line = bytes(buf[:end])
                    del buf[: end + 2]
                    trailer_bytes += len(line)
                    if trailer_bytes > MAX_TRAILERS:
                        raise errors.IncompleteBody("Trailers too long")
                    if line == b"":
                        done = True
                    else:
                        trailer_lines.append(line)
        if not done:
            # a body that ends right after the last trailer line (no final empty line) is accepted
            if state == "trailer" and not buf:
                done = True
            else:
                raise errors.IncompleteBody()
        self._finish_trailers(trailer_lines)

    def _finish_trailers(self, lines: list[bytes]) -> None:
        signature = None
        canonical = []
        for raw in lines:
            name, sep, value = raw.decode("utf-8", "replace").partition(":")
            if not sep:
                raise errors.IncompleteBody("Malformed trailer")
            name, value = name.strip().lower(), value.strip()
            if name == "x-amz-trailer-signature":
                signature = value
                continue
            self.trailers[name] = value
            canonical.append(f"{name}:{value}\n")
        if self.auth.payload == STREAMING_SIGNED_TRAILER:
            self._check("TRAILER", signature, hashlib.sha256("".join(canonical).encode()).hexdigest())
