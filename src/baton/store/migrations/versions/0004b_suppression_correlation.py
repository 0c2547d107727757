"""suppression and correlation: silences, maintenance windows, correlation feedback

Revision ID: 0004b
Revises: 0004a
Create Date: 2026-11-21 08:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004b"
down_revision: str | None = "0004a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("events", sa.Column("suppressed_by", sa.String(length=128), nullable=True))
    op.add_column("events", sa.Column("held_until", TS, nullable=True))
    op.add_column("incidents", sa.Column("origin_set_by", sa.String(length=128), nullable=True))
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("merged_into", ID, nullable=True))
        batch.create_foreign_key("fk_incidents_merged_into", "incidents", ["merged_into"], ["id"])
    op.create_table(
        "silences",
        sa.Column("id", ID, nullable=False),
        sa.Column("matchers", sa.JSON(), nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_silences_ends_at", "silences", ["ends_at"])
    op.create_table(
        "maintenance_windows",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("matchers", sa.JSON(), nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("duration_s", sa.Integer(), nullable=False),
        sa.Column("rrule", sa.Text(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("until", TS, nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "correlation_feedback",
        sa.Column("id", ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("incident_id", ID, nullable=False),
        sa.Column("other_incident_id", ID, nullable=True),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("after", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.ForeignKeyConstraint(["other_incident_id"], ["incidents.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_correlation_feedback_incident_id", "correlation_feedback", ["incident_id"])


def downgrade() -> None:
    op.drop_index("ix_correlation_feedback_incident_id", table_name="correlation_feedback")
    op.drop_table("correlation_feedback")
    op.drop_table("maintenance_windows")
    op.drop_index("ix_silences_ends_at", table_name="silences")
    op.drop_table("silences")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_constraint("fk_incidents_merged_into", type_="foreignkey")
        batch.drop_column("merged_into")
    op.drop_column("incidents", "origin_set_by")
    op.drop_column("events", "held_until")
    op.drop_column("events", "suppressed_by")
