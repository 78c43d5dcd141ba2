"""Roles and users a trust policy names by ARN, kept by unique ID, as IAM does (aws-semantics.md §2.4,
§4.1: "role/user ARNs converted to unique IDs on save").

- On save (CreateRole, UpdateAssumeRolePolicy), each ``Principal.AWS`` that is a role or user ARN of
  an account this server holds must name an entity that exists: otherwise MalformedPolicyDocument
  ``Invalid principal in policy: "AWS":"<arn>"`` [I:hashicorp/terraform-provider-aws#8905]. (No IAM
  users exist here, so a user ARN of such an account never does.) The named role's unique ID is kept
  beside the document (``Role.trust_principal_ids``). An ARN of an account this server does not hold
  cannot be checked and is kept as written.
- When the policy is evaluated, each such ARN stands for its unique ID (``for_evaluation``): the
  caller's role matches by its role ID (``Principal.role_id``), so a role deleted and created again
  under the same name (a new ID) is not trusted.
- When the policy is shown (GetRole, ListRoles), a principal that still exists shows as its ARN, one
  that was deleted as its unique ID (``for_display``), as AWS shows it.

The stored document stays as written; the policy engine sees only documents (it stays pure).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select

from rolebridge import errors
from rolebridge.policy.document import statements_of
from rolebridge.store.schema import Account, Role

_ENTITY_ARN = re.compile(r"^arn:aws:iam::(\d{12}):(role|user)/[^*?]+$")


def _aws_values(statement: Any) -> list[str]:
    principal = statement.get("Principal") if isinstance(statement, Mapping) else None
    aws = principal.get("AWS") if isinstance(principal, Mapping) else None
    values = aws if isinstance(aws, list) else [aws]
    return [v for v in values if isinstance(v, str)]


def principal_ids(session: Any, document: Mapping[str, Any]) -> dict[str, str]:
    """{role ARN as written: unique ID} for the trust policy ``document`` (already valid), or
    MalformedPolicyDocument for a principal of a known account that does not exist."""
    ids: dict[str, str] = {}
    known: dict[str, bool] = {}
    for statement in statements_of(document):
        for value in _aws_values(statement):
            m = _ENTITY_ARN.match(value)
            if m is None or value in ids:
                continue
            account, kind = m.group(1), m.group(2)
            if account not in known:
                known[account] = session.get(Account, account) is not None
            if not known[account]:
                continue
            role = None
            if kind == "role":
                role = session.execute(select(Role).where(Role.account_id == account, Role.arn == value)
                                       ).scalar_one_or_none()
            if role is None:
                raise errors.MalformedPolicyDocument(f'Invalid principal in policy: "AWS":"{value}"')
            ids[value] = role.role_id
    return ids


def _rewrite(text: str, ids: Mapping[str, str], replace: Callable[[str], bool], *, compact: bool) -> str:
    """``text`` with each ``Principal.AWS`` ARN of ``ids`` for which ``replace(id)`` holds written as
    its unique ID; ``text`` itself when none is."""
    if not ids:
        return text
    document = json.loads(text)
    changed = False
    for statement in statements_of(document):
        principal = statement.get("Principal") if isinstance(statement, dict) else None
        if not isinstance(principal, dict) or "AWS" not in principal:
            continue
        aws = principal["AWS"]
        values = aws if isinstance(aws, list) else [aws]
        new = [ids[v] if isinstance(v, str) and v in ids and replace(ids[v]) else v for v in values]
        if new != values:
            principal["AWS"] = new if isinstance(aws, list) else new[0]
            changed = True
    if not changed:
        return text
    return json.dumps(document, separators=(",", ":")) if compact else json.dumps(document)


def for_evaluation(text: str, ids: Mapping[str, str] | None) -> str:
    """The trust policy as it is evaluated: every role it named by ARN as that role's unique ID."""
    return _rewrite(text, ids or {}, lambda _id: True, compact=True)


def for_display(session: Any, row: Role) -> str:
    """The trust policy as IAM shows it: a named role that was deleted since as its unique ID."""
    ids = row.trust_principal_ids or {}
    if not ids:
        return row.trust_policy
    alive = set(session.execute(select(Role.role_id).where(Role.role_id.in_(set(ids.values())))).scalars())
    return _rewrite(row.trust_policy, ids, lambda role_id: role_id not in alive, compact=False)
