"""Persistence: SQLAlchemy 2 models, Alembic migrations and the `Store` (SQLite default, PostgreSQL)."""

from rolebridge.store.db import Store, open_store

__all__ = ["Store", "open_store"]
