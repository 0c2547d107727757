"""audit records signed with a key kept outside the database: key id and HMAC per
record (NULL on the records written before, which verify as unauthenticated legacy
records); a blank stored head over existing records is filled from the last one

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ADD COLUMN is a catalogue change on both databases: no row is rewritten, and the
    # append-only trigger (UPDATE/DELETE) is not involved
    op.add_column("audit_records", sa.Column("key_id", sa.String(length=32), nullable=True))
    op.add_column("audit_records", sa.Column("mac", sa.String(length=64), nullable=True))
    # databases from before the stored head (0002) carry a blank one over their records;
    # fill it now, so that a blank head from here on can only mean tampering
    op.execute(
        "UPDATE meta SET value = ("
        "SELECT CAST(seq AS VARCHAR(20)) || ':' || hash FROM audit_records "
        "ORDER BY seq DESC LIMIT 1) "
        "WHERE key = 'audit.lock' AND value = '' AND EXISTS (SELECT 1 FROM audit_records)"
    )


def downgrade() -> None:
    with op.batch_alter_table("audit_records") as batch:
        batch.drop_column("mac")
        batch.drop_column("key_id")
