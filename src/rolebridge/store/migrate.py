"""Schema upgrades with Alembic: cheap when up to date, serialized when not.

Every process that opens the store calls ``ensure_schema``. The common case (database already at
head) costs one ``SELECT`` and a scan of the small revision files, without importing Alembic
(importing it alone costs more than the 50 ms a CLI command may spend here). Only when the
revision differs does it take a lock and run Alembic:

- SQLite: ``flock`` on ``<database>.migrate.lock`` beside the file (every process sharing the file
  shares the directory);
- PostgreSQL: a session advisory lock, so servers on different hosts serialize too.

After the lock is held the revision is read again: the process that lost the race finds the work
done and does nothing. A database made by ``create_all`` before migrations existed (tables, no
``alembic_version``) is adopted: missing tables are created as ``create_all`` did, then stamped head.

How to add a migration: see ``rolebridge/store/migrations/__init__.py`` (``rolebridge db revision``).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSIONS_DIR = MIGRATIONS_DIR / "versions"
_PG_LOCK_KEY = 0x726F6C65  # "role": one advisory lock id for rolebridge schema changes
_REV = re.compile(r"""^revision\s*(?::[^=]*)?=\s*['"]([^'"]+)['"]""", re.M)
_DOWN = re.compile(r"""^down_revision\s*(?::[^=]*)?=\s*(None|['"]([^'"]+)['"])""", re.M)


class SchemaError(RuntimeError):
    """The database is at a revision this rolebridge does not know (newer code wrote it), or similar."""


@functools.cache
def script_revisions() -> dict[str, str | None]:
    """revision -> down_revision, read from the version files without importing Alembic."""
    revisions: dict[str, str | None] = {}
    for path in sorted(VERSIONS_DIR.glob("*.py")):
        source = path.read_text()
        rev, down = _REV.search(source), _DOWN.search(source)
        if rev is None or down is None:
            continue
        revisions[rev.group(1)] = down.group(2)
    return revisions


def head_revision() -> str:
    revisions = script_revisions()
    parents = {d for d in revisions.values() if d}
    heads = [r for r in revisions if r not in parents]
    if len(heads) != 1:
        raise SchemaError(f"migrations must form one line; heads: {sorted(heads)}")
    return heads[0]


def current_revision(conn: Connection) -> str | None:
    """The database's revision, or None when it has no ``alembic_version`` table yet."""
    try:
        with conn.begin_nested() if conn.in_transaction() else contextlib.nullcontext():
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    except DBAPIError:
        if conn.in_transaction() and not conn.in_nested_transaction():
            conn.rollback()
        return None
    return row[0] if row else None


def ensure_schema(engine: Engine) -> None:
    """Bring the database to head if it is not there; the fast path is one query."""
    head = head_revision()
    with engine.connect() as conn:
        current = current_revision(conn)
        conn.rollback()
    if current == head:
        return
    upgrade(engine)


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            conn.commit()
            try:
                yield conn
            finally:
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
        return
    database = engine.url.database
    lock_path = Path(database + ".migrate.lock") if database and database != ":memory:" else None
    fd = None
    if lock_path is not None:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = open(lock_path, "a+")
        fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            fd.close()


def _config(conn: Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    cfg.attributes["connection"] = conn
    return cfg


def upgrade(engine: Engine, target: str = "head") -> tuple[str | None, str]:
    """Run migrations up to ``target`` under the lock; returns (revision before, revision after)."""
    from alembic import command

    with _migration_lock(engine) as conn:
        before = current_revision(conn)
        conn.commit()
        known = script_revisions()
        if before is not None and before not in known:
            raise SchemaError(f"the database is at revision {before}, which this rolebridge does not know "
                              f"(its newest is {head_revision()}); upgrade rolebridge")
        if before is None and "accounts" in inspect(conn).get_table_names():
            # made by create_all before migrations existed: finish it the way create_all would, then stamp
            from rolebridge.store.schema import Base

            Base.metadata.create_all(conn)
            conn.commit()
            command.stamp(_config(conn), "head")
            conn.commit()
            before = head_revision()
        if before != (head_revision() if target == "head" else target):
            command.upgrade(_config(conn), target)
            conn.commit()
        after = current_revision(conn)
        conn.commit()
    return before, after or ""


def schema_diff(engine: Engine) -> list[Any]:
    """What ``schema.py`` has that the migrated database lacks (or vice versa); [] when in step."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from rolebridge.store.schema import Base

    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, Base.metadata))


def next_revision_id() -> str:
    numbers = [int(r) for r in script_revisions() if r.isdigit()]
    return f"{max(numbers, default=0) + 1:04d}"


def new_revision(message: str) -> Path | None:
    """Autogenerate ``versions/NNNN_<slug>.py`` from the difference between head and ``schema.py``.

    Returns the new file, or None when there is nothing to migrate.
    """
    from alembic import command

    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{tmp}/scratch.db")
        try:
            upgrade(engine)
            if not schema_diff(engine):
                return None
            with engine.connect() as conn:
                script = command.revision(_config(conn), message=message, autogenerate=True,
                                          rev_id=next_revision_id())
        finally:
            engine.dispose()
    script_revisions.cache_clear()
    scripts = script if isinstance(script, list) else [script]
    return Path(scripts[0].path) if scripts and scripts[0] is not None else None
