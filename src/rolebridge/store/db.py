"""Opening the database: engine settings per backend, schema creation, and small setting helpers.

SQLite runs in WAL mode with a busy timeout so several processes (server, CLI) can share it;
PostgreSQL is used through ``postgresql+psycopg://``. The schema comes from Alembic migrations
(``store/migrate.py``), run by whoever opens the store first. Sessions are short and explicit: every
write is one transaction (``with store.tx() as s:``), committed before the caller acknowledges.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from rolebridge.config import Paths
from rolebridge.store.migrate import ensure_schema
from rolebridge.store.schema import Setting
from rolebridge.store.server_key import ServerKey


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


@dataclass
class Store:
    paths: Paths
    engine: Engine
    sessions: sessionmaker[Session]
    server_key: ServerKey

    @contextlib.contextmanager
    def tx(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any exception."""
        with self.sessions.begin() as session:
            yield session

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    def get_setting(self, key: str) -> str | None:
        with self.read() as s:
            row = s.get(Setting, key)
            return row.value if row else None

    def setdefault_setting(self, key: str, value: str) -> str:
        """Set once; later callers get the first value (the public URL is fixed this way)."""
        with self.tx() as s:
            row = s.execute(select(Setting).where(Setting.key == key).with_for_update()).scalar_one_or_none()
            if row is None:
                s.add(Setting(key=key, value=value))
                return value
            return row.value

    def dispose(self) -> None:
        self.engine.dispose()


def open_store(paths: Paths, *, migrate: bool = True) -> Store:
    """Open the database, upgrading its schema first if needed (one cheap query when it is current)."""
    engine = make_engine(paths.database_url)
    if migrate:
        ensure_schema(engine)
    return Store(
        paths=paths,
        engine=engine,
        sessions=sessionmaker(engine, expire_on_commit=False),
        server_key=ServerKey.load(paths.data_dir),
    )
