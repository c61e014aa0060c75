"""the engine's readings through an OBD-II adapter, and the footprint's measured fuel

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 05:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ingest.tables.base

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "obd_samples",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("vehicle", sa.String(64), nullable=False),
        sa.Column("t", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("fuel_rate_l_per_h", sa.Float(), nullable=True),
        sa.Column("fuel_level_pct", sa.Float(), nullable=True),
        sa.Column("odometer_km", sa.Float(), nullable=True),
    )
    op.create_index("ix_obd_vehicle_t", "obd_samples", ["vehicle", "t"])
    # Days computed before keep the model's fuel, as they were.
    with op.batch_alter_table("footprint_days") as batch:
        batch.add_column(
            sa.Column("fuel_source", sa.String(16), nullable=False, server_default="model")
        )
        batch.add_column(sa.Column("measured_fuel_l", sa.Float(), nullable=True))
        batch.add_column(sa.Column("measured_coverage", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("footprint_days") as batch:
        batch.drop_column("measured_coverage")
        batch.drop_column("measured_fuel_l")
        batch.drop_column("fuel_source")
    op.drop_index("ix_obd_vehicle_t", table_name="obd_samples")
    op.drop_table("obd_samples")
