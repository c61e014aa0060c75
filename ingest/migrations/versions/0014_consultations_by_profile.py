"""consultations by patient profile on visits, and months imported from before the system

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 00:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ingest.tables.base

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("visit_changes") as batch_op:
        batch_op.add_column(sa.Column("consultations", sa.Text(), nullable=True))
    op.create_table(
        "imported_consultations",
        sa.Column("vehicle", sa.String(64), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("profile", sa.String(40), nullable=False),
        sa.Column("consultations", sa.Integer(), nullable=False),
        sa.Column("imported_at", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("vehicle", "month", "profile"),
    )


def downgrade() -> None:
    op.drop_table("imported_consultations")
    with op.batch_alter_table("visit_changes") as batch_op:
        batch_op.drop_column("consultations")
