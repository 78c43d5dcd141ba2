"""The running server of a data dir: finding it (its `server.json`), and being the only one.

One server per data dir: its `server.json`, control socket (`run.sock`) and audit journal follower
are the data dir's, and a second server would overwrite the first's and delete them when it stops.
So a server holds an exclusive ``flock`` on ``DATA_DIR/server.lock`` for its life, taken before it
touches any of them. The kernel drops the lock with the process, so a crashed server leaves nothing
that blocks the next start; the descriptor is not inherited (close-on-exec, PEP 446), so the
server's children (the audit follower, `--workers` processes, jobs) never hold it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

from rolebridge import errors


@dataclass(frozen=True)
class ServerInfo:
    url: str
    ca_bundle: str
    pid: int


def running_server(data_dir: Path) -> ServerInfo:
    path = data_dir / "server.json"
    try:
        data = json.loads(path.read_text())
        info = ServerInfo(data["url"], data["ca_bundle"], int(data["pid"]))
    except (OSError, ValueError, KeyError) as exc:
        raise errors.ServiceUnavailable(
            f"No rolebridge server is running for {data_dir} (no server.json). "
            "Start one with `rolebridge server`.") from exc
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError as exc:
        raise errors.ServiceUnavailable(
            f"The server recorded in {path} (pid {info.pid}) is not running. Start `rolebridge server`.") from exc
    except PermissionError:
        pass
    return info


class DataDirBusy(Exception):
    """Another live server holds the data dir."""


def hold_server_lock(data_dir: Path) -> int:
    """Become the data dir's server: an exclusive lock held until the returned descriptor is closed
    (or the process ends). Raises ``DataDirBusy`` naming the server that holds it."""
    path = data_dir / "server.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        os.close(fd)
        raise DataDirBusy(_busy_message(data_dir, holder)) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _busy_message(data_dir: Path, holder: str) -> str:
    who = f"pid {holder}" if holder.isdigit() else "another process"
    with contextlib.suppress(OSError, ValueError, KeyError):
        data = json.loads((data_dir / "server.json").read_text())
        if str(data["pid"]) == holder:
            who += f", {data['url']}"
    return (f"a rolebridge server ({who}) is already serving {data_dir}; stop it first, or give this one "
            "another --data-dir")
