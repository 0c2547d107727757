"""correlation candidate indexes: events by service and first sight, by first sight and by
host; incidents by opening time; and an inverted index of the words of each incident's
alerts (incident_terms)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_events_service_first_seen", "events", ["service", "first_seen"])
    op.create_index("ix_events_host", "events", ["host"])
    op.create_index("ix_events_first_seen", "events", ["first_seen"])
    op.create_index("ix_incidents_opened_at", "incidents", ["opened_at"])
    op.create_table(
        "incident_terms",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("term", sa.String(length=64), nullable=False),
        sa.Column(
            "incident_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("incidents.id"),
            nullable=False,
        ),
    )
    op.create_index("ix_incident_terms_incident_id", "incident_terms", ["incident_id"])
    op.create_index("ix_incident_terms_term_incident", "incident_terms", ["term", "incident_id"])


def downgrade() -> None:
    op.drop_index("ix_incident_terms_term_incident", table_name="incident_terms")
    op.drop_index("ix_incident_terms_incident_id", table_name="incident_terms")
    op.drop_table("incident_terms")
    op.drop_index("ix_incidents_opened_at", table_name="incidents")
    op.drop_index("ix_events_first_seen", table_name="events")
    op.drop_index("ix_events_host", table_name="events")
    op.drop_index("ix_events_service_first_seen", table_name="events")
