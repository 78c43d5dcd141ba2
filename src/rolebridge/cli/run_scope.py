"""Whose runs the `runs` and `job run --detach` commands act on, and the API clients that do it.

The CLI holds the data dir (the store and the key that unseals every account's admin key), so it is
the platform's operator: by default it sees every account's runs and submits a run as its cluster's
account. It narrows to one account only when asked, and then says so:
- ``--account A``: act as account A (its admin key from the data dir);
- ``ROLEBRIDGE_ACCESS_KEY_ID``/``ROLEBRIDGE_SECRET_ACCESS_KEY``: act as the keys' account, with
  those keys, as any platform API client would.
The standard ``AWS_ACCESS_KEY_ID`` is not read here: the walkthrough exports the data account's keys
for IAM clients, and a shell's AWS keys silently deciding which runs exist was a trap.

With a server running, runs are read through its platform API (``/api``); without one, from the
store, so past runs stay inspectable offline. An account with no active key is read from the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rolebridge import errors
from rolebridge.platform.api_client import KEY_ID_ENV, SECRET_ENV, PlatformClient, env_keys, stored_keys
from rolebridge.platform.server_info import ServerInfo, running_server
from rolebridge.services import Services


@dataclass(frozen=True)
class Scope:
    """Every account (the operator: ``account_id`` None) or one, with how that one was chosen."""

    account_id: str | None = None
    keys: tuple[str, str] | None = None  # platform keys from the environment, used as given
    chosen_by: str = ""

    def widen(self) -> str:
        """How to see every account's runs instead."""
        if self.keys is not None:
            return f"unset {KEY_ID_ENV} and {SECRET_ENV} to see every account's runs"
        return "leave out --account to see every account's runs"


def scope_of(services: Services, account: str | None) -> Scope:
    if account:
        return Scope(account, None, f"--account {account}")
    keys = env_keys()
    if keys is None:
        return Scope()
    found = services.long_term_key(keys[0])
    if found is None:
        raise errors.InvalidClientTokenId(
            f"The access key in {KEY_ID_ENV} ({keys[0]}) is not an active key of any account here; "
            f"unset {KEY_ID_ENV} and {SECRET_ENV} to act as the operator.")
    return Scope(found[0].account_id, keys, f"the keys in {KEY_ID_ENV}")


def server_of(services: Services) -> ServerInfo | None:
    try:
        return running_server(services.store.paths.data_dir)
    except errors.ServiceUnavailable:
        return None


def account_client(services: Services, server: ServerInfo, account_id: str) -> PlatformClient | None:
    """A client acting as ``account_id`` with its admin key; None when it has no active key."""
    try:
        return PlatformClient(server, *stored_keys(services, account_id))
    except errors.NoSuchEntity:
        return None


def list_runs(services: Services, scope: Scope, **filters: Any) -> list[dict[str, Any]]:
    """The scope's runs, newest first (``filters``: status, project, limit)."""
    from rolebridge.platform import runs

    limit = filters.get("limit", 50)
    server = server_of(services)
    if server is None:
        return runs.list_runs(services, account_id=scope.account_id, **filters)
    if scope.keys is not None:
        return PlatformClient(server, *scope.keys).runs(**filters)
    rows: list[dict[str, Any]] = []
    for account_id in [scope.account_id] if scope.account_id else runs.run_accounts(services):
        client = account_client(services, server, account_id)
        rows += client.runs(**filters) if client else runs.list_runs(services, account_id=account_id, **filters)
    rows.sort(key=lambda r: r["created_at"], reverse=True)
    return rows[:limit]


def run_client(services: Services, run_id: str, scope: Scope) -> PlatformClient | None:
    """The API client for one run, or None to use the store. A run outside the scope is refused with
    the account it belongs to and the filter that hides it (not "does not exist": it does)."""
    from rolebridge.platform.runs import get_run

    owner = get_run(services, run_id)["account_id"]  # NoSuchEntity when there is no such run at all
    if scope.account_id is not None and owner != scope.account_id:
        raise errors.AccessDenied(
            f"Run {run_id} belongs to account {owner}, and this command sees only account "
            f"{scope.account_id}'s runs ({scope.chosen_by}): use --account {owner}, or {scope.widen()}.")
    server = server_of(services)
    if server is None:
        return None
    if scope.keys is not None:
        return PlatformClient(server, *scope.keys)
    return account_client(services, server, owner)


def cluster_client(services: Services, cluster: str) -> PlatformClient:
    """The client that submits a run to ``cluster``: as the cluster's account, like a foreground run,
    or with the environment's platform keys, which must then be that account's."""
    from rolebridge.platform.clusters import get_cluster

    server = running_server(services.store.paths.data_dir)  # raises the usual "start a server" error
    owner = get_cluster(services, cluster).account_id
    scope = scope_of(services, None)
    if scope.keys is not None:
        if scope.account_id != owner:
            raise errors.AccessDenied(
                f"Cluster {cluster} is in account {owner}, but the keys in {KEY_ID_ENV} are account "
                f"{scope.account_id}'s, and --detach submits with them: unset {KEY_ID_ENV} and {SECRET_ENV} "
                f"to submit as the operator (with account {owner}'s admin key).")
        return PlatformClient(server, *scope.keys)
    client = account_client(services, server, owner)
    if client is None:
        raise errors.NoSuchEntity(
            f"--detach submits through the platform API as cluster {cluster}'s account {owner}, which has no "
            "active access key; run without --detach, or give the account a key.")
    return client
