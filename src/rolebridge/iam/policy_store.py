"""Managed-policy lookups shared by the IAM handlers, authorization and STS session policies.

One place answers "which policy does this ARN name, as seen from this account": a customer
managed policy of that very account, or an AWS managed one (``iam/aws_policies.py``). A policy of
another account is never visible, whatever the caller asks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from rolebridge.iam.aws_policies import aws_managed, is_aws_managed_arn
from rolebridge.store.schema import ManagedPolicy, PolicyVersion, Role, RolePolicyAttachment

_POLICY_ARN = re.compile(r"^arn:aws:iam::(\d{12}|aws):policy(/(?:[^/]+/)*)([\w+=,.@-]{1,128})$")


@dataclass(frozen=True)
class PolicyRef:
    account: str  # 12 digits, or "aws"
    path: str
    name: str


def parse_policy_arn(arn: str) -> PolicyRef | None:
    m = _POLICY_ARN.match(arn)
    if m is None:
        return None
    return PolicyRef(m.group(1), m.group(2), m.group(3))


@dataclass(frozen=True)
class PolicyView:
    """A managed policy as one account sees it (``row`` is None for AWS managed ones)."""

    arn: str
    name: str
    path: str
    policy_id: str
    default_version: str
    description: str | None
    created_at: float
    updated_at: float
    tags: tuple[dict[str, str], ...]
    row: ManagedPolicy | None

    @property
    def aws_managed(self) -> bool:
        return self.row is None


def find_local(session: Any, account: str, arn: str) -> ManagedPolicy | None:
    return session.execute(
        select(ManagedPolicy).where(ManagedPolicy.account_id == account, ManagedPolicy.arn == arn)
    ).scalar_one_or_none()


def resolve(session: Any, account: str, arn: str) -> PolicyView | None:
    """The policy ``arn`` names if ``account`` can see it, else None."""
    if is_aws_managed_arn(arn):
        aws = aws_managed(arn)
        if aws is None:
            return None
        from rolebridge.iam.aws_policies import CREATED, UPDATED

        return PolicyView(aws.arn, aws.name, aws.path, aws.policy_id, aws.version, aws.description, CREATED,
                          UPDATED, (), None)
    row = find_local(session, account, arn)
    if row is None:
        return None
    return PolicyView(row.arn, row.name, row.path, row.policy_id, row.default_version, row.description,
                      row.created_at, row.updated_at, tuple(row.tags or ()), row)


def versions(session: Any, row: ManagedPolicy) -> list[PolicyVersion]:
    rows = session.execute(select(PolicyVersion).where(PolicyVersion.policy_pk == row.id)).scalars().all()
    return sorted(rows, key=lambda v: int(v.version_id[1:]))


def version_document(session: Any, view: PolicyView, version_id: str) -> str | None:
    if view.row is None:
        aws = aws_managed(view.arn)
        return aws.document_text if aws is not None and version_id == aws.version else None
    found = session.execute(select(PolicyVersion.document).where(
        PolicyVersion.policy_pk == view.row.id, PolicyVersion.version_id == version_id)).scalar_one_or_none()
    return found


def default_document(session: Any, account: str, arn: str) -> str | None:
    """The default version's document of a policy ``account`` can see, or None."""
    view = resolve(session, account, arn)
    if view is None:
        return None
    return version_document(session, view, view.default_version)


def attachment_count(session: Any, account: str, arn: str) -> int:
    return session.scalar(select(func.count()).select_from(RolePolicyAttachment).where(
        RolePolicyAttachment.account_id == account, RolePolicyAttachment.policy_arn == arn)) or 0


def boundary_usage_count(session: Any, account: str, arn: str) -> int:
    return session.scalar(select(func.count()).select_from(Role).where(
        Role.account_id == account, Role.permissions_boundary == arn)) or 0


def attached_arns(session: Any, role: Role) -> list[str]:
    return list(session.execute(select(RolePolicyAttachment.policy_arn).where(
        RolePolicyAttachment.role_pk == role.id).order_by(RolePolicyAttachment.id)).scalars())
