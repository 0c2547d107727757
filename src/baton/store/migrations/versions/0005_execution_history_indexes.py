"""execution history indexes: rate limits and breakers read recent runs, so their cost
follows the limit (or the streak), not the length of the history

Revision ID: 0005
Revises: 0004b
Create Date: 2026-11-21 11:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_executions_created_at": ["created_at"],  # the global runs-per-hour limit
    "ix_executions_runbook_created": ["runbook_id", "created_at"],  # per runbook / target
    "ix_executions_runbook_finished": ["runbook_id", "finished_at"],  # breaker streaks
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "executions", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="executions")
