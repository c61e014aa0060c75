"""ETA states, intervals and sources on visits; published predictions and their errors

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ingest.tables.base

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("eta_state", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("eta_earliest", ingest.tables.base.UtcDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("eta_latest", ingest.tables.base.UtcDateTime(), nullable=True)
        )
        batch_op.add_column(sa.Column("eta_source", sa.String(length=16), nullable=True))
    op.create_table(
        "eta_predictions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("visit_id", sa.String(length=200), nullable=False),
        sa.Column("vehicle", sa.String(length=64), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("made_at", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("predicted_arrival", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("earliest", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("latest", ingest.tables.base.UtcDateTime(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("scheduled_arrival", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("arrival", ingest.tables.base.UtcDateTime(), nullable=True),
        sa.Column("error_s", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("eta_predictions", schema=None) as batch_op:
        batch_op.create_index("ix_eta_predictions_arrival", ["arrival"], unique=False)
        batch_op.create_index("ix_eta_predictions_visit", ["visit_id", "made_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("eta_predictions", schema=None) as batch_op:
        batch_op.drop_index("ix_eta_predictions_visit")
        batch_op.drop_index("ix_eta_predictions_arrival")
    op.drop_table("eta_predictions")
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_column("eta_source")
        batch_op.drop_column("eta_latest")
        batch_op.drop_column("eta_earliest")
        batch_op.drop_column("eta_state")
