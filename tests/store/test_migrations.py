"""Alembic migrations: they match schema.py, run fast when current, serialize concurrent upgrades,
adopt pre-migration databases, run on PostgreSQL, and ship inside the wheel."""

from __future__ import annotations

import itertools
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from rolebridge.config import resolve_paths
from rolebridge.store import open_store
from rolebridge.store.db import make_engine
from rolebridge.store.migrate import (
    MIGRATIONS_DIR,
    current_revision,
    ensure_schema,
    head_revision,
    schema_diff,
    script_revisions,
    upgrade,
)
from rolebridge.store.schema import Base

ROLEBRIDGE = str(Path(sys.executable).parent / "rolebridge")
HOW_TO = ('store/schema.py has changes no migration covers. Run `rolebridge db revision -m "what changed"`, '
          "review the new file in src/rolebridge/store/migrations/versions/, and commit it with schema.py.")


def test_migrations_produce_exactly_schema_py(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/m.db")
    upgrade(engine)
    diff = schema_diff(engine)
    assert diff == [], HOW_TO + f"\ndifferences: {diff}"
    assert set(inspect(engine).get_table_names()) == set(Base.metadata.tables) | {"alembic_version"}


def test_revisions_form_one_numbered_line() -> None:
    revisions = script_revisions()
    assert "0001" in revisions and revisions["0001"] is None
    ordered = sorted(revisions)
    for prev, rev in itertools.pairwise(ordered):
        assert revisions[rev] == prev, f"{rev} must revise {prev}, not {revisions[rev]}"
        assert rev == f"{int(prev) + 1:04d}"
    assert head_revision() == ordered[-1]


def test_downgrade_to_base_and_back(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/m.db")
    upgrade(engine)
    upgrade_base = subprocess.run(
        [sys.executable, "-c",
         "import sys; from sqlalchemy import create_engine; from alembic import command;"
         "from rolebridge.store.migrate import _config;"
         f"e = create_engine('sqlite:///{tmp_path}/m.db'); c = e.connect();"
         "command.downgrade(_config(c), 'base'); c.commit()"], capture_output=True, text=True)
    assert upgrade_base.returncode == 0, upgrade_base.stderr
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert schema_diff(engine) == []


def test_open_store_on_current_schema_costs_under_50ms(tmp_path: Path) -> None:
    open_store(resolve_paths(tmp_path)).dispose()
    engine = make_engine(resolve_paths(tmp_path).database_url)
    timings = []
    for _ in range(15):
        t0 = time.perf_counter()
        ensure_schema(engine)
        timings.append(time.perf_counter() - t0)
    engine.dispose()
    print(f"ensure_schema on a current database: median {statistics.median(timings) * 1000:.1f} ms")
    assert statistics.median(timings) < 0.05


def test_fast_path_does_not_import_alembic(tmp_path: Path) -> None:
    open_store(resolve_paths(tmp_path)).dispose()
    code = ("import sys; from rolebridge.config import resolve_paths; from rolebridge.store import open_store;"
            f"open_store(resolve_paths({str(tmp_path)!r})).dispose();"
            "print('alembic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _concurrent_upgrades(args: list[str], n: int = 4) -> list[subprocess.CompletedProcess[str]]:
    procs = [subprocess.Popen([ROLEBRIDGE, "db", "upgrade", "--json", *args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(n)]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=120), *p.communicate()) for p in procs]


def test_concurrent_upgrades_on_sqlite_take_turns(tmp_path: Path) -> None:
    results = _concurrent_upgrades(["--data-dir", str(tmp_path)])
    assert [r.returncode for r in results] == [0] * len(results), [r.stderr for r in results]
    upgraded = [r for r in results if '"before": null' in r.stdout]
    assert len(upgraded) == 1, [r.stdout for r in results]  # one did the work, the others found it done
    engine = make_engine(resolve_paths(tmp_path).database_url)
    with engine.connect() as conn:
        assert current_revision(conn) == head_revision()
        assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    assert schema_diff(engine) == []


def test_database_made_by_create_all_is_adopted(tmp_path: Path) -> None:
    engine = make_engine(resolve_paths(tmp_path).database_url)
    Base.metadata.tables["accounts"].create(engine)
    Base.metadata.tables["settings"].create(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO accounts (account_id, created_at) VALUES ('123456789012', 1)"))
    open_store(resolve_paths(tmp_path)).dispose()
    with engine.connect() as conn:
        assert current_revision(conn) == head_revision()
        assert conn.execute(text("SELECT account_id FROM accounts")).scalar() == "123456789012"
    assert schema_diff(engine) == []


def test_database_from_a_newer_rolebridge_is_refused(tmp_path: Path) -> None:
    engine = make_engine(resolve_paths(tmp_path).database_url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    proc = subprocess.run([ROLEBRIDGE, "db", "upgrade", "--data-dir", str(tmp_path)], capture_output=True,
                          text=True)
    assert proc.returncode != 0
    assert "revision 9999, which this rolebridge does not know" in proc.stderr


@pytest.mark.postgres
def test_migrations_on_postgres_with_concurrent_upgrades(pg_url: str) -> None:
    results = _concurrent_upgrades(["--database-url", pg_url], n=4)
    assert [r.returncode for r in results] == [0] * 4, [r.stderr for r in results]
    assert len([r for r in results if '"before": null' in r.stdout]) == 1
    engine = make_engine(pg_url)
    with engine.connect() as conn:
        assert current_revision(conn) == head_revision()
    assert schema_diff(engine) == [], HOW_TO
    engine.dispose()


def test_wheel_ships_migrations_and_they_run_from_it(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                            "-w", str(tmp_path / "dist"), str(root)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("rolebridge-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for path in sorted(MIGRATIONS_DIR.rglob("*")):
        if path.suffix in (".py", ".mako"):
            rel = "rolebridge/store/migrations/" + path.relative_to(MIGRATIONS_DIR).as_posix()
            assert rel in names, f"{rel} missing from the wheel"
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import rolebridge, sys; from sqlalchemy import create_engine;"
            "from rolebridge.store.migrate import upgrade, schema_diff;"
            f"assert rolebridge.__file__.startswith({str(site)!r}), rolebridge.__file__;"
            f"e = create_engine('sqlite:///{tmp_path}/w.db'); print(upgrade(e)); assert schema_diff(e) == []")
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    assert ran.returncode == 0, ran.stderr
    assert "(None, '" in ran.stdout


def test_db_revision_writes_the_next_numbered_migration_for_a_new_table(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from sqlalchemy import Column, Integer, String, Table

    from rolebridge.store import migrate

    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, copy)
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", copy)
    monkeypatch.setattr(migrate, "VERSIONS_DIR", copy / "versions")
    migrate.script_revisions.cache_clear()
    assert migrate.new_revision("nothing") is None
    expected = f"{int(head_revision()) + 1:04d}"
    table = Table("zz_example", Base.metadata, Column("id", Integer, primary_key=True), Column("name", String(8)))
    try:
        path = migrate.new_revision("add zz example")
        assert path is not None
        assert path.name == f"{expected}_add_zz_example.py"
        source = path.read_text()
        assert "op.create_table('zz_example'" in source and f"revision = '{expected}'" in source
        engine = create_engine(f"sqlite:///{tmp_path}/new.db")
        migrate.upgrade(engine)
        assert "zz_example" in inspect(engine).get_table_names()
        assert schema_diff(engine) == []
    finally:
        Base.metadata.remove(table)
        migrate.script_revisions.cache_clear()


def test_0003_gives_the_roles_trust_policies_name_their_unique_ids(tmp_path: Path) -> None:
    """Trust policies saved before roles were kept by unique ID: each ARN naming a role now gets that
    role's ID (iam/trust_principals.py), so re-creating the role afterwards does not inherit the trust."""
    import json

    engine = create_engine(f"sqlite:///{tmp_path}/m.db")
    upgrade(engine, "0002")
    arn = "arn:aws:iam::111111111111:role/caller"
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                        "Principal": {"AWS": [arn, "arn:aws:iam::111111111111:role/gone", "111111111111"]}}]})
    with engine.begin() as c:
        c.execute(text("INSERT INTO accounts (account_id, created_at) VALUES ('111111111111', 0)"))
        for pk, name, role_id, doc in ((1, "caller", "AROACALLER0000000001", "{}"),
                                       (2, "target", "AROATARGET0000000001", trust)):
            c.execute(text("INSERT INTO roles (id, account_id, name, name_lower, path, role_id, arn, trust_policy, "
                           "max_session_duration, tags, created_at) VALUES (:id, '111111111111', :n, :n, '/', "
                           ":rid, :arn, :doc, 3600, '[]', 0)"),
                      {"id": pk, "n": name, "rid": role_id, "arn": f"arn:aws:iam::111111111111:role/{name}",
                       "doc": doc})
    upgrade(engine)
    with engine.connect() as c:
        rows = dict(c.execute(text("SELECT name, trust_principal_ids FROM roles")).all())
    assert rows["caller"] is None
    assert json.loads(rows["target"]) == {arn: "AROACALLER0000000001"}
