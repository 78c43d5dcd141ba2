"""Account guardrails: SCP-style policies that cap what every principal of an account may do.

AWS Organizations attaches service control policies to member accounts from outside them; an SCP
grants nothing, it only limits (aws-semantics 4.6): a request by a principal of the account (its
role sessions, and its root user too) is allowed only if some SCP allows the action, and any SCP
``Deny`` wins over every allow. rolebridge has no organizations, so the operator attaches them to
an account directly (`rolebridge account guardrail put|list|delete`, data-dir access, like
`rolebridge account create`): the account's own admin keys cannot lift their own guardrails, which
is the point of them.

Documents are validated as SCPs by the policy engine (kind ``scp``): no Principal/NotPrincipal,
Version ``2012-10-17``, at most 5,120 characters with whitespace counted. An account takes at most
``MAX_PER_ACCOUNT`` of them, AWS's limit of SCPs attached directly to one account.

Enforcement lives at the three places a signed principal is authorized (``iam/authorize.py``,
``s3/authz.py``, ``sts/assume_role.py``), which pass ``Services.account_guardrails(account)`` to
``policy.evaluate``. Not at AssumeRoleWithWebIdentity's trust evaluation: that caller is no AWS
principal (aws-semantics 4.7); the session it gets is a principal of the role's account and is
limited from its first call on. Across accounts the principal's own account's guardrails apply
(the resource account's would be RCPs, which are not modelled).
"""

from __future__ import annotations

import functools
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from rolebridge import errors
from rolebridge.clock import iso8601
from rolebridge.iam.arns import ACCOUNT_RE
from rolebridge.policy import (
    ALLOW_NOTHING,
    CompiledPolicy,
    Decision,
    EvaluationResult,
    PolicyKind,
    compile_policy,
    validate_policy,
)
from rolebridge.policy.document import statements_of
from rolebridge.store.schema import Account, AccountGuardrail

MAX_PER_ACCOUNT = 5  # AWS Organizations: SCPs attached directly to one account
NAME_RE = re.compile(r"^[\w+=,.@-]{1,128}$")
# What the account root has in its own account before the guardrails cap it: everything.
ROOT_ALLOW_ALL = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Sid": "AccountRoot", "Effect": "Allow", "Action": "*", "Resource": "*"}]})


@dataclass(frozen=True)
class GuardrailView:
    account_id: str
    name: str
    document: str
    created_at: float
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        return {"account_id": self.account_id, "name": self.name, "document": json.loads(self.document),
                "created_at": self.created_at, "updated_at": self.updated_at}

    @property
    def updated(self) -> str:
        return iso8601(self.updated_at)


def _view(row: AccountGuardrail) -> GuardrailView:
    return GuardrailView(row.account_id, row.name, row.document, row.created_at, row.updated_at)


def check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise errors.ValidationError(
            f"Guardrail name {name!r} must be 1-128 characters of letters, digits and +=,.@_-")


def check_document(document: str) -> None:
    """Refuse what AWS Organizations would refuse as an SCP, with the engine's first problem (AWS's
    words) and where it is, so a one-line error says what to fix."""
    problems = validate_policy(document, kind=PolicyKind.SCP)
    if not problems:
        return
    first = problems[0]
    cls = errors.LimitExceeded if first.code == "LimitExceeded" else errors.MalformedPolicyDocument
    raise cls(first.message, explanation=first.detail or None)


def _require_account(session: Any, account_id: str) -> None:
    if not ACCOUNT_RE.match(account_id):
        raise errors.ValidationError(f"Account ID {account_id!r} must be 12 digits.")
    if session.get(Account, account_id) is None:
        raise errors.NoSuchEntity(f"Account {account_id} does not exist (create it with `rolebridge account create`).")


def put_guardrail(services: Any, account_id: str, name: str, document: str,
                  *, now: float | None = None) -> tuple[GuardrailView, bool]:
    """Attach (or replace) guardrail ``name`` on the account; True when it is new.

    Running servers see it on their next request: ``invalidate()`` bumps the shared generation
    that every process's lookup cache checks (``lookup_cache.py``).
    """
    check_name(name)
    check_document(document)
    now = time.time() if now is None else now
    with services.store.tx() as s:
        _require_account(s, account_id)
        row = s.execute(select(AccountGuardrail).where(
            AccountGuardrail.account_id == account_id, AccountGuardrail.name == name)).scalar_one_or_none()
        created = row is None
        if row is None:
            count = s.execute(select(func.count()).select_from(AccountGuardrail).where(
                AccountGuardrail.account_id == account_id)).scalar_one()
            if count >= MAX_PER_ACCOUNT:
                raise errors.LimitExceeded(
                    f"Account {account_id} already has {count} guardrails, the most one account may have "
                    f"(AWS Organizations attaches at most {MAX_PER_ACCOUNT} SCPs to an account).")
            row = AccountGuardrail(account_id=account_id, name=name, document=document, created_at=now,
                                   updated_at=now)
            s.add(row)
        else:
            row.document = document
            row.updated_at = now
        s.flush()
        view = _view(row)
    services.invalidate()
    return view, created


def allows_anything(views: list[GuardrailView]) -> bool:
    """Whether any guardrail has an Allow statement. Guardrails are an allow-list (as SCPs): an
    account whose guardrails only deny can do nothing at all. AWS Organizations avoids that by
    attaching FullAWSAccess to every account by default; here nothing is attached implicitly."""
    return any(isinstance(statement, dict) and statement.get("Effect") == "Allow"
               for view in views for statement in statements_of(json.loads(view.document)))


def list_guardrails(store: Any, account_id: str) -> list[GuardrailView]:
    with store.read() as s:
        _require_account(s, account_id)
        rows = s.execute(select(AccountGuardrail).where(AccountGuardrail.account_id == account_id)
                         .order_by(AccountGuardrail.name)).scalars().all()
        return [_view(r) for r in rows]


def delete_guardrail(services: Any, account_id: str, name: str) -> None:
    with services.store.tx() as s:
        _require_account(s, account_id)
        row = s.execute(select(AccountGuardrail).where(
            AccountGuardrail.account_id == account_id, AccountGuardrail.name == name)).scalar_one_or_none()
        if row is None:
            raise errors.NoSuchEntity(f"Account {account_id} has no guardrail named {name!r}.")
        s.delete(row)
    services.invalidate()


def load_compiled(store: Any, account_id: str) -> tuple[CompiledPolicy, ...]:
    """The account's guardrails, compiled (what ``Services.account_guardrails`` caches)."""
    with store.read() as s:
        rows = s.execute(select(AccountGuardrail.name, AccountGuardrail.document).where(
            AccountGuardrail.account_id == account_id).order_by(AccountGuardrail.name)).all()
    out = []
    for name, document in rows:
        try:
            out.append(compile_policy(document, kind=PolicyKind.SCP, name=f"guardrail {name}"))
        except errors.AWSError:  # fail closed
            out.append(compile_policy(ALLOW_NOTHING, kind=PolicyKind.SCP, name=f"guardrail {name}"))
    return tuple(out)


@functools.cache
def root_identity() -> CompiledPolicy:
    """The account root's identity side: allow-all, so that only the guardrails limit it (one object)."""
    return compile_policy(ROOT_ALLOW_ALL, kind=PolicyKind.IDENTITY, name="account root")


def denial_reason(result: EvaluationResult, action: str) -> str | None:
    """AWS's wording when a guardrail decided the denial (the form AWS uses since 2021, which names
    the policy type), else None: the caller keeps its own wording for the other policy types."""
    if result.decision is Decision.EXPLICIT_DENY:
        kind = next((r.kind for r in result.reasons if r.statement is not None), None)
        return "with an explicit deny in a service control policy" if kind == "scp" else None
    if result.reasons and result.reasons[0].kind == "scp":
        return f"because no service control policy allows the {action} action"
    return None
