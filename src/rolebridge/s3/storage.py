"""Object bytes on disk: ``DATA_DIR/s3/tmp`` for writes in progress, ``DATA_DIR/s3/blobs`` for
complete ones.

A blob is written to a temporary file, fsynced, renamed to its final (never reused) name and
the directory fsynced; only then does the caller commit the database row that names it. So a
crash leaves at worst a temporary file or an unreferenced blob (invisible garbage, swept by
``sweep``), never a row pointing at partial bytes. Blobs are immutable: overwriting a key writes
a new blob and deletes the old one after the row switched.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import anyio.to_thread

READ_CHUNK = 1024 * 1024


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class TempBlob:
    """A file being written. ``commit`` makes it durable and returns its blob name."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self.name = uuid.uuid4().hex
        self.path = store.tmp / self.name
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self.size += len(data)

    def copy_from(self, path: Path) -> None:
        assert self._fd is not None
        with open(path, "rb") as src:
            while True:
                block = src.read(READ_CHUNK * 8)
                if not block:
                    break
                self.write(block)

    def _commit_sync(self) -> str:
        assert self._fd is not None
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        final = self.store.path(self.name)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path, final)
        _fsync_dir(final.parent)
        return self.name

    async def commit(self) -> str:
        return await anyio.to_thread.run_sync(self._commit_sync)

    def discard(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.path.unlink(missing_ok=True)


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.blobs = root / "blobs"
        self.tmp.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.blobs.mkdir(parents=True, exist_ok=True, mode=0o700)

    def path(self, name: str) -> Path:
        if not name.isalnum():
            raise ValueError(f"bad blob name {name!r}")
        return self.blobs / name[:2] / name

    def temp(self) -> TempBlob:
        return TempBlob(self)

    def delete(self, names: Iterable[str | None]) -> None:
        for name in names:
            if name:
                self.path(name).unlink(missing_ok=True)

    def read(self, name: str, start: int, length: int) -> Iterator[bytes]:
        """The bytes [start, start+length) of a blob, in bounded chunks."""
        with open(self.path(name), "rb") as f:
            f.seek(start)
            left = length
            while left > 0:
                block = f.read(min(READ_CHUNK, left))
                if not block:
                    raise OSError(f"blob {name} is shorter than its row says")
                left -= len(block)
                yield block

    def sweep(self, referenced: set[str], *, older_than: float = 3600.0) -> int:
        """Delete temporary files and unreferenced blobs older than ``older_than`` seconds.

        The age guard keeps a blob that another process just renamed (its row not yet committed).
        """
        cutoff = time.time() - older_than
        removed = 0
        for path in [*self.tmp.iterdir(), *(p for d in self.blobs.iterdir() if d.is_dir() for p in d.iterdir())]:
            try:
                if path.name in referenced or path.stat().st_mtime > cutoff:
                    continue
                path.unlink()
                removed += 1
            except FileNotFoundError:
                continue
        return removed

