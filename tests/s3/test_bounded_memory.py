"""Large objects move through the server in bounded memory.

A 300 MB object is streamed through one PutObject (boto3, aws-chunked with a CRC32 trailer, as
boto3 sends it) and one GetObject, generated and hashed on the fly on the client side so the test
itself never holds it. The server gets a process of its own so its peak resident set size
(``VmHWM`` in /proc/PID/status) reflects only this test; its growth over the transfer must stay a
small fraction of the object size: a server that buffered the body, or the response, would grow
by about the object's size.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
from s3_helpers import s3_client

SIZE = 300 * 1024 * 1024
MAX_GROWTH = 64 * 1024 * 1024
BLOCK = hashlib.sha256(b"bounded").digest() * (1 << 15)  # 1 MiB pattern (with a period, not all zeros)


class Generated(io.RawIOBase):
    """``size`` bytes of a repeating pattern, readable and seekable, never materialized."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = min(len(view), self.size - self.pos)
        done = 0
        while done < n:
            start = (self.pos + done) % len(BLOCK)
            take = min(n - done, len(BLOCK) - start)
            view[done:done + take] = BLOCK[start:start + take]
            done += take
        self.pos += n
        return n


def expected_sha256(size: int) -> str:
    h = hashlib.sha256()
    full, rest = divmod(size, len(BLOCK))
    for _ in range(full):
        h.update(BLOCK)
    h.update(BLOCK[:rest])
    return h.hexdigest()


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


@pytest.mark.slow
def test_300mb_put_and_get_in_bounded_memory(fresh_server: Any) -> None:
    s3 = s3_client(fresh_server, account="965000000001")
    s3.create_bucket(Bucket="bounded")
    # warm up every code path first (imports, pools, caches), so the baseline is the steady state
    s3.put_object(Bucket="bounded", Key="warm", Body=Generated(9 * 1024 * 1024))
    s3.get_object(Bucket="bounded", Key="warm")["Body"].read()
    pid = fresh_server.process.pid
    before = peak_rss(pid)

    s3.put_object(Bucket="bounded", Key="big", Body=Generated(SIZE))
    after_put = peak_rss(pid)
    head = s3.head_object(Bucket="bounded", Key="big")
    assert head["ContentLength"] == SIZE
    h = hashlib.sha256()
    got = 0
    for chunk in s3.get_object(Bucket="bounded", Key="big")["Body"].iter_chunks(1 << 20):
        h.update(chunk)
        got += len(chunk)
    after_get = peak_rss(pid)

    assert got == SIZE
    assert h.hexdigest() == expected_sha256(SIZE)
    growth = {"put": after_put - before, "get": after_get - after_put}
    print(f"server VmHWM {before / 2**20:.0f} MiB; growth put {growth['put'] / 2**20:.1f} MiB, "
          f"get {growth['get'] / 2**20:.1f} MiB")
    assert after_get - before < MAX_GROWTH, growth
