"""The STS lookup cache stays correct across processes sharing one database.

Two ``Services`` opened on the same data dir stand for two server processes (each has its own
engine, connections and cache, exactly as two workers do); writes go through the real IAM handlers.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from rolebridge.bootstrap import open_services
from rolebridge.caller import Caller
from rolebridge.context import CallContext
from rolebridge.iam import providers as _providers  # noqa: F401 - registers the handlers
from rolebridge.iam import roles as _roles  # noqa: F401
from rolebridge.iam.accounts import ensure_account
from rolebridge.iam.arns import parse_role_arn, root_arn
from rolebridge.iam.registry import OPERATIONS
from rolebridge.lookup_cache import LookupCache
from rolebridge.services import Services

ACCOUNT = "737373737373"
ISSUER = "https://oidc.cache.test/id/ONE"


def _trust(sub: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
        "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/oidc.cache.test/id/ONE"},
        "Condition": {"StringEquals": {"oidc.cache.test/id/ONE:sub": sub}}}]})


def _call(services: Services, action: str, params: dict) -> dict:
    caller = Caller(account_id=ACCOUNT, arn=root_arn(ACCOUNT), user_id=ACCOUNT, kind="root", access_key_id="")
    ctx = CallContext(services=services, caller=caller, now=time.time(), request_id=str(uuid.uuid4()))
    return OPERATIONS[("iam", action)].handler(ctx, params)


@pytest.fixture
def two_processes(tmp_path: Path) -> tuple[Services, Services]:
    a = open_services(str(tmp_path / "data"))
    ensure_account(a.store, ACCOUNT)
    b = open_services(str(tmp_path / "data"))
    return a, b


def test_role_change_in_one_process_is_seen_by_the_other(two_processes: tuple[Services, Services]) -> None:
    reader, writer = two_processes
    _call(writer, "CreateRole", {"RoleName": "cached", "AssumeRolePolicyDocument": _trust("first")})
    ref = parse_role_arn(f"arn:aws:iam::{ACCOUNT}:role/cached")
    assert ref is not None
    first = reader.role_by_arn(ACCOUNT, ref)
    assert first is not None and "first" in first.trust_policy
    assert reader.role_by_arn(ACCOUNT, ref) is first  # served from memory
    assert reader.lookups.hits >= 1

    _call(writer, "UpdateAssumeRolePolicy", {"RoleName": "cached", "PolicyDocument": _trust("second")})
    second = reader.role_by_arn(ACCOUNT, ref)
    assert second is not None and "second" in second.trust_policy

    _call(writer, "DeleteRole", {"RoleName": "cached"})
    assert reader.role_by_arn(ACCOUNT, ref) is None


def test_negative_provider_lookup_is_not_kept_after_create(two_processes: tuple[Services, Services]) -> None:
    reader, writer = two_processes
    assert reader.provider_for_issuer(ACCOUNT, ISSUER) is None
    assert reader.provider_for_issuer(ACCOUNT, ISSUER) is None  # cached miss
    _call(writer, "CreateOpenIDConnectProvider", {"Url": ISSUER, "ClientIDList": ["sts.amazonaws.com"],
                                                  "ThumbprintList": ["a" * 40]})
    found = reader.provider_for_issuer(ACCOUNT, ISSUER)
    assert found is not None and found.arn == f"arn:aws:iam::{ACCOUNT}:oidc-provider/oidc.cache.test/id/ONE"
    assert reader.provider_accounts_for_issuer(ISSUER) == [ACCOUNT]


def test_one_counter_read_per_request_scope(two_processes: tuple[Services, Services]) -> None:
    reader, _writer = two_processes
    reads = 0
    real = reader.lookups.read_generation

    def counting() -> str | None:
        nonlocal reads
        reads += 1
        return real()

    reader.lookups.read_generation = counting  # type: ignore[method-assign]
    reader.provider_for_issuer(ACCOUNT, ISSUER)
    reader.provider_for_issuer(ACCOUNT, ISSUER)
    assert reads == 2  # outside a request: every lookup checks

    import contextvars

    def one_request() -> None:
        reader.lookups.request_scope()
        reader.provider_for_issuer(ACCOUNT, ISSUER)
        reader.provider_accounts_for_issuer(ISSUER)
        reader.cluster_jwks("nope")

    contextvars.copy_context().run(one_request)
    assert reads == 3


def test_ttl_backstop_and_fail_closed(tmp_path: Path) -> None:
    services = open_services(str(tmp_path / "data"))
    now = [100.0]
    cache = LookupCache(services.store.engine, ttl=5, clock=lambda: now[0])
    loads = []
    assert cache.get("k", lambda: loads.append(1) or "v1") == "v1"
    assert cache.get("k", lambda: loads.append(1) or "v2") == "v1"
    now[0] += 6  # past the TTL with no bump: reloaded
    assert cache.get("k", lambda: loads.append(1) or "v3") == "v3"
    assert len(loads) == 2

    def broken() -> str | None:
        raise RuntimeError("database unreachable")

    cache.read_generation = broken  # type: ignore[method-assign]
    assert cache.get("k", lambda: "from-db") == "from-db"  # never the cached "v3"


def test_bump_is_visible_as_a_new_generation(tmp_path: Path) -> None:
    services = open_services(str(tmp_path / "data"))
    before = services.lookups.read_generation()
    services.invalidate()
    after = services.lookups.read_generation()
    assert before != after
    services.invalidate()
    assert int(services.lookups.read_generation() or 0) == int(after or 0) + 1
