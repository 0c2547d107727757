"""KPI indexes: a covering index for the month's runs and one on proposals' proposer,
so `baton kpis` reads the period from indexes alone (no row lookups per execution)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 03:15:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_executions_kpi",
        "executions",
        ["created_at", "status", "runbook_id", "verified", "decision_id"],
    )
    op.create_index("ix_proposals_proposer", "proposals", ["proposer"])


def downgrade() -> None:
    op.drop_index("ix_proposals_proposer", table_name="proposals")
    op.drop_index("ix_executions_kpi", table_name="executions")
