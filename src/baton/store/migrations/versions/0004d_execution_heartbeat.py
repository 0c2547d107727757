"""durable executions: the worker holding a running execution, its heartbeat, and an
index for per-runbook track records

Revision ID: 0004d
Revises: 0003
Create Date: 2026-11-21 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004d"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("worker", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    # a runbook's track record and breaker read its executions by status on every run
    op.create_index("ix_executions_runbook_status", "executions", ["runbook_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_executions_runbook_status", table_name="executions")
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("worker")
