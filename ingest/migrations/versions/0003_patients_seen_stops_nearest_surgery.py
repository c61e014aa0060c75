"""patients seen, stops' nearest surgery

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 18:00:19.166102
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stops", schema=None) as batch_op:
        batch_op.add_column(sa.Column("nearest_surgery_km", sa.Float(), nullable=True))

    with op.batch_alter_table("visit_changes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("patients_seen", sa.Integer(), nullable=True))

    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.create_index(
            "ix_visits_vehicle_arrival", ["vehicle", "scheduled_arrival"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_index("ix_visits_vehicle_arrival")

    with op.batch_alter_table("visit_changes", schema=None) as batch_op:
        batch_op.drop_column("patients_seen")

    with op.batch_alter_table("stops", schema=None) as batch_op:
        batch_op.drop_column("nearest_surgery_km")
