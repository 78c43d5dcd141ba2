"""Alembic migrations for the rolebridge database (driven by ``rolebridge.store.migrate``).

Adding a table or column (anyone who edits ``store/schema.py`` must do this in the same commit):

1. Change the models in ``src/rolebridge/store/schema.py``.
2. Run ``rolebridge db revision -m "add managed policies"`` (from the source tree). It upgrades a
   scratch SQLite database to the current head, compares it with ``schema.py`` (Alembic
   autogenerate) and writes ``versions/NNNN_<slug>.py`` with the next number.
3. Read the file: autogenerate gets tables, columns, indexes and constraints right, but renames show
   up as drop + add. Keep it backend-neutral (``sa.JSON``, ``sa.String``...), SQLite and PostgreSQL both
   run it.
4. ``pytest tests/store/test_migrations.py``: it fails while ``schema.py`` and the migrations differ,
   and runs every revision on SQLite (and PostgreSQL when the binaries are there).

Never edit a revision that has been committed; add a new one. The revision id is the file's number.
"""
