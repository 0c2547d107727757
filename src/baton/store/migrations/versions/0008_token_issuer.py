"""tokens record who minted them for someone else; approvals count the people behind
their approvers (four-eyes is about people, not names)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("issued_by", sa.String(length=128), nullable=True))
    with op.batch_alter_table("approvals") as batch:
        batch.add_column(sa.Column("counted_people", sa.JSON(), nullable=True))
    # an approval already under way counts the names it has (nothing more is known)
    op.execute("UPDATE approvals SET counted_people = approvers")
    with op.batch_alter_table("approvals") as batch:
        batch.alter_column("counted_people", existing_type=sa.JSON(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        batch.drop_column("counted_people")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("issued_by")
