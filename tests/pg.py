"""A throwaway PostgreSQL cluster for tests: initdb + pg_ctl on a free port, stopped afterwards.

initdb refuses to run as root, so as root the cluster belongs to the ``postgres`` user (its
directory lives under /tmp, outside pytest's 0700 tmp tree, so that user can reach it). Tests are
skipped only when the PostgreSQL binaries are not installed; any other failure is an error.
fsync is off: these tests kill rolebridge servers, never PostgreSQL itself.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg


def pg_bindir() -> Path | None:
    """Where initdb/pg_ctl live: ``pg_config --bindir``, PATH, or Debian's versioned directories."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0:
                candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(os.path.realpath(initdb)).parent)
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for path in candidates:
        if (path / "initdb").exists() and (path / "pg_ctl").exists() and (path / "postgres").exists():
            return path
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PgCluster:
    bindir: Path
    root: Path
    port: int
    user: str | None  # the OS user that owns the cluster when we are root

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "rb") -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd="/")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster() -> PgCluster:
    bindir = pg_bindir()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL binaries (initdb, pg_ctl, postgres) are not installed")
    if not stat.S_ISCHR(os.stat("/dev/null").st_mode):
        raise RuntimeError("/dev/null is not a character device (something replaced it with a file); initdb "
                           "needs it: as root, `rm /dev/null && mknod -m 666 /dev/null c 1 3`")
    root = Path(tempfile.mkdtemp(prefix="rolebridge-pg-"))
    user = None
    if os.geteuid() == 0:
        user = "postgres"
        pw = pwd.getpwnam(user)
        os.chown(root, pw.pw_uid, pw.pw_gid)
    cluster = PgCluster(bindir, root, 0, user)
    init = cluster._run("initdb", "-D", str(root / "data"), "-U", "postgres", "-A", "trust", "--no-sync",
                        "-E", "UTF8", "--locale=C")
    if init.returncode != 0:
        raise RuntimeError(f"initdb failed: {init.stderr or init.stdout}")
    last = ""
    for _ in range(5):  # a free port can be taken between the probe and the bind
        cluster.port = _free_port()
        opts = (f"-p {cluster.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                f"-c max_connections=200 -c full_page_writes=off")
        started = cluster._run("pg_ctl", "-D", str(root / "data"), "-l", str(root / "log"), "-w", "-t", "60",
                               "-o", opts, "start")
        if started.returncode == 0:
            return cluster
        last = started.stderr + started.stdout + (root / "log").read_text(errors="replace")[-2000:]
    shutil.rmtree(root, ignore_errors=True)
    raise RuntimeError(f"pg_ctl start failed: {last}")


# -- pytest fixtures (re-exported by tests/conftest.py) ------------------------------------------
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One throwaway PostgreSQL cluster for the session; skipped only if the binaries are absent."""
    if pg_bindir() is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl, postgres) not found: pg_config --bindir, PATH, "
                    "/usr/lib/postgresql/*/bin")
    cluster = start_cluster()
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """A fresh empty database of the test's own: its ``postgresql+psycopg://`` URL."""
    return pg_cluster.create_database()
