"""track records as running counts: learning an outcome adds to its runbook's counts
instead of counting every past execution again; the scheduler finds rollbacks in flight
by their step's status

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


STEP_STATUS = "ix_execution_steps_status"


def upgrade() -> None:
    op.create_index(STEP_STATUS, "execution_steps", ["status"])
    op.create_table(
        "track_records",
        sa.Column("runbook_id", sa.String(length=128), primary_key=True),
        sa.Column("runs", sa.BigInteger(), nullable=False),
        sa.Column("succeeded", sa.BigInteger(), nullable=False),
    )
    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("learned_as", sa.String(length=16), nullable=True))
    # what was learned so far is what the executions' endings say
    op.execute(
        "INSERT INTO track_records (runbook_id, runs, succeeded) "
        "SELECT runbook_id, "
        "SUM(CASE WHEN status IN ('succeeded', 'failed', 'rolled_back') THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END) "
        "FROM executions GROUP BY runbook_id"
    )
    op.execute(
        "UPDATE executions SET learned_as = status WHERE status IN "
        "('succeeded', 'failed', 'rolled_back', 'cancelled', 'interrupted', 'vetoed')"
    )


def downgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("learned_as")
    op.drop_table("track_records")
    op.drop_index(STEP_STATUS, table_name="execution_steps")
