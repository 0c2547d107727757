"""the service desk: ticket lifecycle, SLA clock and group; field options as data; field
change history with who or what made each change; comments; answer drafts awaiting an
agent; self-service requests with their identity check

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def _id() -> sa.Column:
    return sa.Column("id", ID, primary_key=True)


def _ticket() -> sa.Column:
    return sa.Column("ticket_id", ID, sa.ForeignKey("tickets.id"), nullable=False)


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("group", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("assignee", sa.String(length=128), nullable=True))
        batch.add_column(
            sa.Column("channel", sa.String(length=16), nullable=False, server_default="api")
        )
        batch.add_column(sa.Column("external_ref", sa.String(length=256), nullable=True))
        for name in ("due_at", "paused_at", "breached_at", "resolved_at"):
            batch.add_column(sa.Column(name, TS, nullable=True))
        batch.add_column(sa.Column("suggestions", sa.JSON(), nullable=True))
    with op.batch_alter_table("tickets") as batch:
        batch.alter_column("channel", server_default=None)
    op.create_index("ix_tickets_external_ref", "tickets", ["external_ref"])
    op.create_table(
        "desk_options",
        _id(),
        sa.Column("field", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("sla_minutes", sa.Integer(), nullable=True),
        sa.UniqueConstraint("field", "value"),
    )
    op.create_table(
        "ticket_changes",
        _id(),
        _ticket(),
        sa.Column("field", sa.String(length=16), nullable=False),
        sa.Column("old", sa.String(length=256), nullable=True),
        sa.Column("new", sa.String(length=256), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("actor_kind", sa.String(length=8), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("reverted_by", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_ticket_changes_ticket_id", "ticket_changes", ["ticket_id"])
    op.create_table(
        "ticket_comments",
        _id(),
        _ticket(),
        sa.Column("author", sa.String(length=128), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_ticket_comments_ticket_id", "ticket_comments", ["ticket_id"])
    op.create_table(
        "answer_drafts",
        _id(),
        _ticket(),
        sa.Column("article", sa.String(length=128), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("decided_at", TS, nullable=True),
    )
    op.create_index("ix_answer_drafts_ticket_id", "answer_drafts", ["ticket_id"])
    op.create_table(
        "selfservice_requests",
        _id(),
        sa.Column("ticket_id", ID, sa.ForeignKey("tickets.id"), nullable=True),
        sa.Column("item", sa.String(length=32), nullable=False),
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("code_hash", sa.String(length=128), nullable=True),
        sa.Column("code_expires_at", TS, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("selfservice_requests")
    op.drop_index("ix_answer_drafts_ticket_id", table_name="answer_drafts")
    op.drop_table("answer_drafts")
    op.drop_index("ix_ticket_comments_ticket_id", table_name="ticket_comments")
    op.drop_table("ticket_comments")
    op.drop_index("ix_ticket_changes_ticket_id", table_name="ticket_changes")
    op.drop_table("ticket_changes")
    op.drop_table("desk_options")
    op.drop_index("ix_tickets_external_ref", table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        for name in ("suggestions", "resolved_at", "breached_at", "paused_at", "due_at"):
            batch.drop_column(name)
        for name in ("external_ref", "channel", "assignee", "group"):
            batch.drop_column(name)
