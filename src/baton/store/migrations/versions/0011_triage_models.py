"""triage models: trained versions, predictions with the version that made them, and
technicians' corrections for retraining

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "triage_models",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("label", sa.String(length=128), nullable=False),
        sa.Column("text_columns", sa.JSON(), nullable=False),
        sa.Column("field_columns", sa.JSON(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.Column("training", sa.LargeBinary(), nullable=False),
        sa.Column("notes", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.UniqueConstraint("name", "version"),
    )
    op.create_index("ix_triage_models_name", "triage_models", ["name"])
    op.create_table(
        "triage_predictions",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("top3", sa.JSON(), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_triage_predictions_model_name", "triage_predictions", ["model_name"])
    op.create_index("ix_triage_predictions_subject", "triage_predictions", ["subject"])
    op.create_table(
        "triage_corrections",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("predicted", sa.String(length=256), nullable=True),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.Column(
            "prediction_id",
            BigId,
            sa.ForeignKey("triage_predictions.id"),
            nullable=True,
        ),
        sa.Column("by", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("learned_in", sa.String(length=32), nullable=True),
    )
    op.create_index("ix_triage_corrections_model_name", "triage_corrections", ["model_name"])


def downgrade() -> None:
    op.drop_index("ix_triage_corrections_model_name", table_name="triage_corrections")
    op.drop_table("triage_corrections")
    op.drop_index("ix_triage_predictions_subject", table_name="triage_predictions")
    op.drop_index("ix_triage_predictions_model_name", table_name="triage_predictions")
    op.drop_table("triage_predictions")
    op.drop_index("ix_triage_models_name", table_name="triage_models")
    op.drop_table("triage_models")
