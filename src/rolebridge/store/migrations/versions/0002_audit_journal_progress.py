"""Audit journal progress: how far each journal segment has been moved into ``audit_events``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_journal_progress",
        sa.Column("segment", sa.String(length=200), nullable=False),
        sa.Column("done_bytes", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("segment"),
    )


def downgrade() -> None:
    op.drop_table("audit_journal_progress")
