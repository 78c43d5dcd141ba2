"""`rolebridge db upgrade|current|check|revision|rotate-server-key|reseal`: schema and key upkeep.

Migrations also run by themselves whenever a command or the server opens the store; `db upgrade`
is for doing it deliberately (before starting several servers, in a deploy step). How to add a
migration after changing ``store/schema.py``: ``rolebridge db revision -m "what changed"`` (see
``rolebridge/store/migrations/__init__.py``).
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from rolebridge.cli.options import DatabaseUrl, DataDir, Json, console, print_json


def _engine(data_dir: str | None, database_url: str | None):  # type: ignore[no-untyped-def]
    from rolebridge.config import resolve_paths
    from rolebridge.store.db import make_engine

    return make_engine(resolve_paths(data_dir, database_url).database_url)


def register(app: typer.Typer) -> None:
    db = typer.Typer(help="Database schema (Alembic migrations) and the server key.", no_args_is_help=True)
    app.add_typer(db, name="db")

    @db.command("upgrade")
    def upgrade_cmd(revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
                    data_dir: DataDir = None, database_url: DatabaseUrl = None,
                    json_out: Json = False) -> None:
        """Upgrade the schema (safe to run from several processes at once: they take turns)."""
        from rolebridge.store.migrate import upgrade

        engine = _engine(data_dir, database_url)
        try:
            before, after = upgrade(engine, revision)
        finally:
            engine.dispose()
        if json_out:
            print_json({"before": before, "after": after})
        elif before == after:
            console.print(f"schema already at {after}")
        else:
            console.print(f"schema upgraded {before or '(empty)'} -> {after}")

    @db.command("current")
    def current_cmd(data_dir: DataDir = None, database_url: DatabaseUrl = None,
                    json_out: Json = False) -> None:
        """The database's revision and the newest this rolebridge knows."""
        from rolebridge.store.migrate import current_revision, head_revision

        engine = _engine(data_dir, database_url)
        try:
            with engine.connect() as conn:
                current = current_revision(conn)
        finally:
            engine.dispose()
        info = {"current": current, "head": head_revision()}
        if json_out:
            print_json(info)
        else:
            console.print(f"current {current or '(none)'}  head {info['head']}")

    @db.command("check")
    def check_cmd() -> None:
        """Fail (exit 1) when store/schema.py has changes no migration covers."""
        import tempfile

        from sqlalchemy import create_engine

        from rolebridge.store.migrate import schema_diff, upgrade

        with tempfile.TemporaryDirectory() as tmp:
            engine = create_engine(f"sqlite:///{tmp}/check.db")
            upgrade(engine)
            diff = schema_diff(engine)
            engine.dispose()
        if diff:
            for item in diff:
                console.print(f"  {item}")
            console.print('schema.py differs from the migrations: run `rolebridge db revision -m "..."`')
            raise typer.Exit(1)
        console.print("migrations match schema.py")

    @db.command("revision")
    def revision_cmd(message: Annotated[str, typer.Option("-m", "--message", help="What changed.")]) -> None:
        """Write the next migration (versions/NNNN_<slug>.py) from the changes in store/schema.py."""
        from rolebridge.store.migrate import new_revision

        path = new_revision(message)
        if path is None:
            console.print("nothing to do: the migrations already match schema.py")
            return
        console.print(f"wrote {path}\nreview it, then run: pytest tests/store/test_migrations.py")

    @db.command("rotate-server-key")
    def rotate_cmd(data_dir: DataDir = None, database_url: DatabaseUrl = None,
                   reseal: Annotated[bool | None, typer.Option(
                       "--reseal/--no-reseal",
                       help="Re-seal stored secrets with the new key (default: yes for server.key, "
                            "no with $ROLEBRIDGE_SERVER_KEYS until every server has the new value).")] = None,
                   ) -> None:
        """Put a new server key in front; tokens and secrets sealed with older keys still open.

        With ``server.key`` (the default), running servers on this data dir pick the new key up by
        themselves. With $ROLEBRIDGE_SERVER_KEYS set, prints the new value to give every server.
        """
        from rolebridge.config import resolve_paths
        from rolebridge.store import open_store
        from rolebridge.store.server_key import ENV_VAR, ServerKey

        paths = resolve_paths(data_dir, database_url)
        env = os.environ.get(ENV_VAR)
        if env:
            new_value = ServerKey.rotated_env(env)
            os.environ[ENV_VAR] = new_value
            console.print(f"set on every server and restart them, then run `rolebridge db reseal` with it:\n"
                          f"{ENV_VAR}={new_value}")
        else:
            ServerKey.rotate_file(paths.data_dir)
            console.print(f"rotated {paths.data_dir / 'server.key'}")
        if reseal if reseal is not None else not env:
            store = open_store(paths)
            try:
                console.print(f"re-sealed {reseal_secrets(store)} stored secret(s) with the new key")
            finally:
                store.dispose()

    @db.command("reseal")
    def reseal_cmd(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
        """Re-seal stored secrets with the newest server key (after every server has it)."""
        from rolebridge.config import resolve_paths
        from rolebridge.store import open_store

        store = open_store(resolve_paths(data_dir, database_url))
        try:
            console.print(f"re-sealed {reseal_secrets(store)} stored secret(s) with the newest key")
        finally:
            store.dispose()


def reseal_secrets(store) -> int:  # type: ignore[no-untyped-def]
    """Seal every stored access-key secret again with the newest server key."""
    from sqlalchemy import select

    from rolebridge.services import SECRET_PURPOSE
    from rolebridge.store.schema import AccessKey

    count = 0
    with store.tx() as s:
        for row in s.execute(select(AccessKey).with_for_update()).scalars():
            secret = store.server_key.open(row.secret_sealed, purpose=SECRET_PURPOSE)
            row.secret_sealed = store.server_key.seal(secret, purpose=SECRET_PURPOSE)
            count += 1
    return count
