"""Finding the running server of a data dir (its `server.json`)."""

from __future__ import annotations

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
