"""Crash safety: `kill -9` the server while 8 clients write; every acknowledged write survives.

Each client (its own account, its own boto3 client) loops creating OIDC providers and roles and
remembers the ones answered HTTP 200, with the request ID. After SIGKILL and a restart on the
same database, every acknowledged provider and role is read back through IAM, every acknowledged
request has its audit event, and the database passes an integrity check. Writes in flight at the
kill may or may not be there (they were never acknowledged).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import text

from conftest import Server, start_server, stop_server
from rolebridge.audit import iter_events
from rolebridge.config import resolve_paths
from rolebridge.iam.accounts import create_account
from rolebridge.store import open_store

CLIENTS = 8
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
    "Federated": "arn:aws:iam::111111111111:oidc-provider/crash.example"},
    "Action": "sts:AssumeRoleWithWebIdentity"}]})


def _accounts(data_dir: Path, database_url: str | None) -> dict[str, Any]:
    store = open_store(resolve_paths(data_dir, database_url))
    try:
        return {f"7171717171{i:02d}": create_account(store, f"7171717171{i:02d}") for i in range(CLIENTS)}
    finally:
        store.dispose()


def _client(server: Server, keys: Any) -> Any:
    return server.client("iam", aws_access_key_id=keys.access_key_id, aws_secret_access_key=keys.secret_access_key)


def _hammer(server: Server, keys: Any, acked: list[tuple[str, str, str]], stop: threading.Event) -> None:
    iam = _client(server, keys)
    i = 0
    while not stop.is_set():
        i += 1
        try:
            if i % 2:
                out = iam.create_role(RoleName=f"crash-{i}", AssumeRolePolicyDocument=TRUST)
                acked.append(("role", f"crash-{i}", out["ResponseMetadata"]["RequestId"]))
            else:
                url = f"https://crash.example/{keys.account_id}/{i}"
                out = iam.create_open_id_connect_provider(Url=url, ThumbprintList=["a" * 40],
                                                          ClientIDList=["sts.amazonaws.com"])
                acked.append(("provider", url.removeprefix("https://"), out["ResponseMetadata"]["RequestId"]))
        except (ClientError, BotoCoreError, OSError):
            return  # the server is gone


def _present(server: Server, keys: Any) -> tuple[set[str], set[str]]:
    iam = _client(server, keys)
    roles = {r["RoleName"] for page in iam.get_paginator("list_roles").paginate() for r in page["Roles"]}
    providers = {p["Arn"].split(":oidc-provider/", 1)[1]
                 for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]}
    return roles, providers


def _integrity(data_dir: Path, database_url: str | None) -> str:
    store = open_store(resolve_paths(data_dir, database_url))
    try:
        with store.engine.connect() as conn:
            if store.engine.dialect.name == "sqlite":
                assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
                assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
                return "PRAGMA integrity_check: ok, foreign_key_check: clean"
            orphans = conn.execute(text(
                "SELECT (SELECT count(*) FROM roles r LEFT JOIN accounts a USING (account_id) "
                "        WHERE a.account_id IS NULL)"
                " + (SELECT count(*) FROM oidc_providers p LEFT JOIN accounts a USING (account_id) "
                "        WHERE a.account_id IS NULL)"
                " + (SELECT count(*) FROM (SELECT account_id, name_lower FROM roles GROUP BY 1, 2 "
                "        HAVING count(*) > 1) d)")).scalar()
            assert orphans == 0
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS amcheck"))
            indexes = conn.execute(text(
                "SELECT c.oid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_am am ON am.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE am.amname = 'btree' AND n.nspname = 'public'")).scalars().all()
            for index in indexes:
                conn.execute(text("SELECT bt_index_check(CAST(:i AS regclass), true)"), {"i": index})
            conn.commit()
            return f"no orphans or duplicates; amcheck bt_index_check clean on {len(indexes)} indexes"
    finally:
        store.dispose()


def _crash_and_check(tmp_path: Path, database_url: str | None) -> None:
    extra = ("--database-url", database_url) if database_url else ()
    env = {"ROLEBRIDGE_DATABASE_URL": database_url} if database_url else None
    data = tmp_path / "data"
    data.mkdir()
    accounts = _accounts(data, database_url)
    server = start_server(data, tmp_path / "home", *extra, env=env)
    acked: dict[str, list[tuple[str, str, str]]] = {a: [] for a in accounts}
    stop = threading.Event()
    threads = [threading.Thread(target=_hammer, args=(server, keys, acked[a], stop)) for a, keys in accounts.items()]
    for t in threads:
        t.start()
    time.sleep(4)
    server.process.kill()  # SIGKILL: no shutdown, no flush
    server.process.wait()
    stop.set()
    for t in threads:
        t.join(60)
    server = start_server(data, tmp_path / "home", *extra, env=env)
    try:
        total_acked = total_present = total_rows = 0
        for account, keys in accounts.items():
            roles, providers = _present(server, keys)
            total_rows += len(roles) + len(providers)
            want_roles = {name for kind, name, _ in acked[account] if kind == "role"}
            want_providers = {url for kind, url, _ in acked[account] if kind == "provider"}
            total_acked += len(want_roles) + len(want_providers)
            total_present += len(want_roles & roles) + len(want_providers & providers)
            assert want_roles <= roles, f"lost roles in {account}: {sorted(want_roles - roles)}"
            assert want_providers <= providers, f"lost providers in {account}: {sorted(want_providers - providers)}"
        store = open_store(resolve_paths(data, database_url))
        try:  # the query API moves in what the killed server's journal holds before it reads
            request_ids = {event["requestID"] for event in iter_events(store, limit=None)}
        finally:
            store.dispose()
        acked_ids = {rid for items in acked.values() for _, _, rid in items}
        check = _integrity(data, database_url)
        backend = "PostgreSQL" if database_url else "SQLite"
        print(f"\n[{backend}] acknowledged writes: {total_acked}; acknowledged and present after kill -9: "
              f"{total_present}; rows present (incl. in-flight): {total_rows}; audit events for acknowledged "
              f"requests: {len(acked_ids & request_ids)}/{len(acked_ids)}; integrity: {check}")
        assert total_acked > 8 * 4, "the clients barely wrote anything before the kill"
        assert total_present == total_acked
        assert acked_ids <= request_ids, f"{len(acked_ids - request_ids)} acknowledged calls missing from the trail"
    finally:
        stop_server(server)


@pytest.mark.slow
def test_kill_9_loses_no_acknowledged_write_sqlite(tmp_path: Path) -> None:
    _crash_and_check(tmp_path, None)


@pytest.mark.slow
@pytest.mark.postgres
def test_kill_9_loses_no_acknowledged_write_postgres(tmp_path: Path, pg_url: str) -> None:
    _crash_and_check(tmp_path, pg_url)
