"""Alembic environment: always run from ``rolebridge.store.migrate`` with a live connection.

There is no ``alembic.ini``: the caller passes the connection in ``config.attributes`` so the
migration runs inside the lock it took (see ``migrate.upgrade``).
"""

from __future__ import annotations

from alembic import context

from rolebridge.store.schema import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - offline mode is not supported
    raise RuntimeError("run migrations through `rolebridge db upgrade`, not the alembic command")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
