"""The audit trail's durable half: per-process, append-only journal segments of CloudTrail events.

Why a journal and not the database on the request path: inserting one event (a 1.5 KB row and its
indexes) cost ~60 µs of CPU per call in SQLite (more round trips on PostgreSQL), and the writer
thread that did it held the GIL against the event loop. Appending the same JSON line to a file and
``fdatasync``-ing once per batch costs a few µs, and the GIL is released while the disk works. A
call is answered only once its line is on disk, so nothing acknowledged is lost; ``audit.ingest``
then moves lines into the database, where queries run, in large transactions off the request path.

Layout: ``DATA/audit/<host>-<pid>-<start ns>-<random>.jsonl``, mode 0600 in a 0700 directory, one
event per line. The process appending to a segment holds an exclusive ``flock`` on it for as long
as it may append; a segment nobody holds is finished (its writer rotated it, closed or died), and
``ingest`` deletes it once every complete line is in the database. A segment is created under a
name ``ingest`` ignores and renamed once locked, so it is never seen unlocked while in use.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import socket
import time
from pathlib import Path

SEGMENT_SUFFIX = ".jsonl"
MAX_SEGMENT_BYTES = 64 * 1024 * 1024


def journal_dir(data_dir: Path) -> Path:
    return data_dir / "audit"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _host() -> str:
    name = socket.gethostname().split(".")[0]
    return "".join(c if c.isalnum() or c == "-" else "_" for c in name)[:40] or "host"


class Journal:
    """One process's appender. Not thread-safe: the audit writer thread is its only user."""

    def __init__(self, directory: Path, *, max_segment_bytes: int = MAX_SEGMENT_BYTES) -> None:
        self.directory = directory
        self.max_segment_bytes = max_segment_bytes
        self.path: Path | None = None
        self._fd: int | None = None
        self._size = 0

    def append(self, lines: list[bytes]) -> None:
        """Write ``lines`` (each ending in a newline) and make them durable before returning.

        On any failure the segment is cut back to its last durable size and finished, so a torn
        batch never becomes part of the trail, and the next batch starts a fresh segment.
        """
        if self._fd is None or self._size >= self.max_segment_bytes:
            self.close()
            self._open()
        assert self._fd is not None
        data = memoryview(b"".join(lines))
        try:
            written = 0
            while written < len(data):
                written += os.write(self._fd, data[written:])
            os.fdatasync(self._fd)
        except BaseException:
            try:
                os.ftruncate(self._fd, self._size)
                os.fdatasync(self._fd)
            except OSError:
                pass  # the close below still finishes the segment; ingest drops a torn last line
            self.close()
            raise
        self._size += len(data)

    def close(self) -> None:
        """Finish the current segment (its lock goes with the descriptor)."""
        fd, self._fd, self.path = self._fd, None, None
        if fd is not None:
            os.close(fd)

    def _open(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"{_host()}-{os.getpid()}-{time.time_ns()}-{secrets.token_hex(4)}"
        staging = self.directory / f"{name}.new"
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            path = self.directory / f"{name}{SEGMENT_SUFFIX}"
            os.rename(staging, path)
            _fsync_dir(self.directory)  # the segment's name survives a crash before its first line
        except BaseException:
            os.close(fd)
            staging.unlink(missing_ok=True)
            raise
        self._fd, self._size, self.path = fd, 0, path


def is_live(fd: int) -> bool:
    """Whether some process still holds the segment open for appending (see the module docstring)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False
