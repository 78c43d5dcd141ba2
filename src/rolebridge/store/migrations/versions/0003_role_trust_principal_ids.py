"""Role trust principal IDs: the unique ID of each role a trust policy names by ARN, as IAM keeps it.

A trust policy saved before this revision named its roles by ARN only; each such ARN that names a role
now is given that role's ID (the best this revision can know), so deleting and re-creating the role
from now on no longer passes the trust on. An ARN naming no role stays as written.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import json
import re
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ROLE_ARN = re.compile(r"^arn:aws:iam::\d{12}:role/[^*?]+$")


def _aws_principals(document: str) -> list[str]:
    try:
        doc: Any = json.loads(document)
    except ValueError:
        return []
    statements = doc.get("Statement") if isinstance(doc, dict) else None
    out: list[str] = []
    for st in [statements] if isinstance(statements, dict) else statements or []:
        principal = st.get("Principal") if isinstance(st, dict) else None
        aws = principal.get("AWS") if isinstance(principal, dict) else None
        out += [v for v in (aws if isinstance(aws, list) else [aws]) if isinstance(v, str) and _ROLE_ARN.match(v)]
    return out


def upgrade() -> None:
    with op.batch_alter_table("roles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trust_principal_ids", sa.JSON(), nullable=True))
    roles = sa.table("roles", sa.column("id", sa.Integer), sa.column("arn", sa.String),
                     sa.column("role_id", sa.String), sa.column("trust_policy", sa.Text),
                     sa.column("trust_principal_ids", sa.JSON))
    bind = op.get_bind()
    rows = bind.execute(sa.select(roles.c.id, roles.c.arn, roles.c.role_id, roles.c.trust_policy)).all()
    by_arn = {r.arn: r.role_id for r in rows}
    for r in rows:
        ids = {arn: by_arn[arn] for arn in _aws_principals(r.trust_policy) if arn in by_arn}
        if ids:
            bind.execute(roles.update().where(roles.c.id == r.id).values(trust_principal_ids=ids))


def downgrade() -> None:
    with op.batch_alter_table("roles", schema=None) as batch_op:
        batch_op.drop_column("trust_principal_ids")
