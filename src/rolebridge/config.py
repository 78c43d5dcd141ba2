"""Where state lives: the data dir and the database URL, resolved the same way by every command."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = ".rolebridge"
DEFAULT_PORT = 8443


@dataclass(frozen=True)
class Paths:
    data_dir: Path
    database_url: str

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / "tls"

    @property
    def ca_pem(self) -> Path:
        return self.tls_dir / "ca.pem"

    @property
    def server_json(self) -> Path:
        return self.data_dir / "server.json"

    @property
    def server_lock(self) -> Path:
        """Held (``flock``) by the one server of this data dir for its life (``platform/server_info.py``)."""
        return self.data_dir / "server.lock"

    @property
    def control_socket(self) -> Path:
        """The running server's Unix socket for `rolebridge run` (``platform/control.py``)."""
        return self.data_dir / "run.sock"

    @property
    def clusters_dir(self) -> Path:
        return self.data_dir / "clusters"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    def cluster_key_dir(self, name: str) -> Path:
        return self.clusters_dir / name / "keys"


def resolve_paths(data_dir: str | os.PathLike[str] | None = None, database_url: str | None = None) -> Paths:
    raw = data_dir or os.environ.get("ROLEBRIDGE_DATA_DIR") or DEFAULT_DATA_DIR
    path = Path(raw).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    try:
        path.chmod(0o700)
    except PermissionError:  # a data dir owned by someone else: keep going, files are 0600
        pass
    url = database_url or os.environ.get("ROLEBRIDGE_DATABASE_URL") or f"sqlite:///{path / 'rolebridge.db'}"
    return Paths(data_dir=path, database_url=url)


def write_private(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` atomically with ``data`` in a file of mode 0600 from its first byte.

    The bytes go to a temporary file beside ``path`` (unique: concurrent writers never share one),
    then a rename: a reader sees the old content or the new, never a part. ``durable`` also fsyncs
    before the rename, for what must survive a crash (keys, the server key); a job's token file,
    rewritten on a schedule and deleted after the run, only has to be whole and skips it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not path.is_file():
        # an atomic rename over /dev/null or a FIFO would replace the device with a plain file
        raise OSError(f"refusing to replace {path}: it exists and is not a regular file")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")  # 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
