"""one table for each vehicle's live state: the link's reception time moves into
vehicle_state, and vehicle_links goes

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 06:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ingest.tables.base

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("vehicle_state") as batch:
        batch.add_column(
            sa.Column("status_seen_at", ingest.tables.base.UtcDateTime(), nullable=True)
        )
    # Vehicles known by their link only get a live-state row; where the link's status is
    # the newer, it stands, with when it was received.
    op.execute(
        "INSERT INTO vehicle_state (vehicle) SELECT l.vehicle FROM vehicle_links l "
        "WHERE NOT EXISTS (SELECT 1 FROM vehicle_state s WHERE s.vehicle = l.vehicle)"
    )
    op.execute(
        "UPDATE vehicle_state SET "
        "online = (SELECT l.online FROM vehicle_links l WHERE l.vehicle = vehicle_state.vehicle), "
        "status_t = (SELECT l.status_t FROM vehicle_links l "
        "WHERE l.vehicle = vehicle_state.vehicle) "
        "WHERE EXISTS (SELECT 1 FROM vehicle_links l WHERE l.vehicle = vehicle_state.vehicle "
        "AND (vehicle_state.status_t IS NULL OR l.status_t > vehicle_state.status_t))"
    )
    op.execute(
        "UPDATE vehicle_state SET status_seen_at = (SELECT l.observed_at FROM vehicle_links l "
        "WHERE l.vehicle = vehicle_state.vehicle AND l.status_t = vehicle_state.status_t)"
    )
    op.drop_table("vehicle_links")


def downgrade() -> None:
    op.create_table(
        "vehicle_links",
        sa.Column("vehicle", sa.String(64), primary_key=True),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("status_t", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("observed_at", ingest.tables.base.UtcDateTime(), nullable=False),
    )
    op.execute(
        "INSERT INTO vehicle_links (vehicle, online, status_t, observed_at) "
        "SELECT vehicle, online, status_t, COALESCE(status_seen_at, status_t) "
        "FROM vehicle_state WHERE online IS NOT NULL AND status_t IS NOT NULL"
    )
    with op.batch_alter_table("vehicle_state") as batch:
        batch.drop_column("status_seen_at")
