"""entities and placement: each event keeps the entity it is about, where it runs and
what reported it; each service keeps where it runs (hosts, zone), whether it is shared
infrastructure, and its endpoints

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 20:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("entity", sa.String(length=256), nullable=True))
        batch.add_column(sa.Column("host", sa.String(length=256), nullable=True))
        batch.add_column(sa.Column("reporter", sa.String(length=128), nullable=True))
    op.create_index("ix_events_entity", "events", ["entity"])
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("placement", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.drop_column("placement")
    op.drop_index("ix_events_entity", table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("reporter")
        batch.drop_column("host")
        batch.drop_column("entity")
