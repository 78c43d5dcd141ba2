"""Runner settings and run placement: runs that go to Kubernetes, not a local process.

``projects.runner_settings`` and ``job_definitions.runner_settings`` keep a project file's
``runner``/``image``/``kube_context``; ``runs.placement`` records where a run went (context,
namespace, Job), so `runs cancel` can delete the Job and service account without its supervisor.
All nullable: existing rows stay local runs.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job_definitions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("runner_settings", sa.JSON(), nullable=True))
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("runner_settings", sa.JSON(), nullable=True))
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("placement", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("placement")
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("runner_settings")
    with op.batch_alter_table("job_definitions", schema=None) as batch_op:
        batch_op.drop_column("runner_settings")
