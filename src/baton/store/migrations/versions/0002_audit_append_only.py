"""audit chain lock row; audit records append-only at the database (PostgreSQL)

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The row appends lock on, so two writers never read the same chain head.
    op.execute("INSERT INTO meta (key, value) VALUES ('audit.lock', '')")
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE OR REPLACE FUNCTION baton_audit_append_only() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION 'audit_records is append-only: % refused', TG_OP;
        END;
        $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        """
        CREATE TRIGGER audit_records_append_only
        BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_records
        FOR EACH STATEMENT EXECUTE FUNCTION baton_audit_append_only()
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_records_append_only ON audit_records")
        op.execute("DROP FUNCTION IF EXISTS baton_audit_append_only()")
    op.execute("DELETE FROM meta WHERE key = 'audit.lock'")
