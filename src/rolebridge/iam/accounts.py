"""Accounts and their admin keys (the account root's long-term access key)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from rolebridge import errors
from rolebridge.iam import ids
from rolebridge.iam.arns import ACCOUNT_RE, root_arn
from rolebridge.services import SECRET_PURPOSE
from rolebridge.store import Store
from rolebridge.store.schema import AccessKey, Account


@dataclass(frozen=True)
class AccountKeys:
    account_id: str
    access_key_id: str
    secret_access_key: str

    def to_dict(self) -> dict[str, str]:
        return {"account_id": self.account_id, "access_key_id": self.access_key_id,
                "secret_access_key": self.secret_access_key}


def create_account(store: Store, account_id: str, *, now: float | None = None) -> AccountKeys:
    """Create the account (if new) and a fresh admin key; the secret is shown once, stored sealed."""
    if not ACCOUNT_RE.match(account_id):
        raise errors.ValidationError(f"Account ID {account_id!r} must be 12 digits.")
    now = time.time() if now is None else now
    akid, secret = ids.long_term_access_key_id(), ids.secret_access_key()
    with store.tx() as s:
        if s.get(Account, account_id) is None:
            s.add(Account(account_id=account_id, created_at=now))
            s.flush()
        s.add(AccessKey(access_key_id=akid, account_id=account_id, principal_arn=root_arn(account_id),
                        secret_sealed=store.server_key.seal(secret.encode(), purpose=SECRET_PURPOSE),
                        created_at=now))
    return AccountKeys(account_id, akid, secret)


def ensure_account(store: Store, account_id: str, *, now: float | None = None) -> None:
    if not ACCOUNT_RE.match(account_id):
        raise errors.ValidationError(f"Account ID {account_id!r} must be 12 digits.")
    with store.tx() as s:
        if s.get(Account, account_id) is None:
            s.add(Account(account_id=account_id, created_at=time.time() if now is None else now))
