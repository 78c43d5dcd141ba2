"""Persistence: SQLAlchemy 2 models and the `Store` that opens them (SQLite default, PostgreSQL for many servers)."""

from rolebridge.store.db import Store, open_store

__all__ = ["Store", "open_store"]
