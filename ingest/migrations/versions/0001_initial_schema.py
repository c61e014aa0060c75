"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 17:37:28.736810
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ingest.tables.base

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("vehicle", sa.String(length=64), nullable=False),
        sa.Column("stream", sa.String(length=16), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("received_at", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("vehicle", "stream", "seq"),
    )
    op.create_table(
        "energy_samples",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("vehicle", sa.String(length=64), nullable=False),
        sa.Column("t", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("voltage_v", sa.Float(), nullable=True),
        sa.Column("current_a", sa.Float(), nullable=True),
        sa.Column("power_w", sa.Float(), nullable=True),
        sa.Column("soc_pct", sa.Float(), nullable=True),
        sa.Column("consumed_ah", sa.Float(), nullable=True),
        sa.Column("pv_power_w", sa.Float(), nullable=True),
        sa.Column("yield_today_kwh", sa.Float(), nullable=True),
        sa.Column("source", sa.String(length=8), nullable=True),
        sa.Column("time_to_go_min", sa.Float(), nullable=True),
        sa.Column("alarm", sa.Boolean(), nullable=True),
        sa.Column("alarm_reason", sa.Integer(), nullable=True),
        sa.Column("pv_voltage_v", sa.Float(), nullable=True),
        sa.Column("charge_state", sa.String(length=32), nullable=True),
        sa.Column("charger_error", sa.SmallInteger(), nullable=True),
        sa.Column("yield_total_kwh", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("energy_samples", schema=None) as batch_op:
        batch_op.create_index("ix_energy_vehicle_t", ["vehicle", "t"], unique=False)

    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("vehicle", sa.String(length=64), nullable=False),
        sa.Column("t", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "fridge_samples",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("vehicle", sa.String(length=64), nullable=False),
        sa.Column("t", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("temp_c", sa.Float(), nullable=True),
        sa.Column("humidity_pct", sa.Float(), nullable=True),
        sa.Column("door_open", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("fridge_samples", schema=None) as batch_op:
        batch_op.create_index("ix_fridge_vehicle_t", ["vehicle", "t"], unique=False)

    op.create_table(
        "gps_samples",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("vehicle", sa.String(length=64), nullable=False),
        sa.Column("t", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("alt_m", sa.Float(), nullable=True),
        sa.Column("speed_mps", sa.Float(), nullable=True),
        sa.Column("course_deg", sa.Float(), nullable=True),
        sa.Column("fix_mode", sa.SmallInteger(), nullable=False),
        sa.Column("quality", sa.SmallInteger(), nullable=False),
        sa.Column("sats", sa.SmallInteger(), nullable=True),
        sa.Column("hdop", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("gps_samples", schema=None) as batch_op:
        batch_op.create_index("ix_gps_vehicle_t", ["vehicle", "t"], unique=False)

    op.create_table(
        "rejections",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("received_at", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("topic", sa.String(length=256), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("payload_bytes", sa.Integer(), nullable=False),
        sa.Column("payload_head", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rejections", schema=None) as batch_op:
        batch_op.create_index("ix_rejections_reason", ["reason"], unique=False)

    op.create_table(
        "stop_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("vehicle", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("stop", sa.String(length=64), nullable=False),
        sa.Column("t", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("evidence_fixes", sa.Integer(), nullable=False),
        sa.Column("evidence_max_distance_m", sa.Float(), nullable=False),
        sa.Column("evidence_first_fix", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("evidence_last_fix", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("vehicle", "kind", "t", name="uq_stop_events_vehicle_kind_t"),
    )
    with op.batch_alter_table("stop_events", schema=None) as batch_op:
        batch_op.create_index("ix_stop_events_vehicle_day", ["vehicle", "day"], unique=False)

    op.create_table(
        "stops",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("radius_m", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "timeseries_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "unscheduled_stops",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("vehicle", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("stop", sa.String(length=64), nullable=False),
        sa.Column("arrival", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("departure", ingest.tables.base.UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("unscheduled_stops", schema=None) as batch_op:
        batch_op.create_index("ix_unscheduled_day_vehicle", ["day", "vehicle"], unique=False)

    op.create_table(
        "vehicle_state",
        sa.Column("vehicle", sa.String(length=64), nullable=False),
        sa.Column("last_seen", ingest.tables.base.UtcDateTime(), nullable=True),
        sa.Column("gps_t", ingest.tables.base.UtcDateTime(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("speed_mps", sa.Float(), nullable=True),
        sa.Column("course_deg", sa.Float(), nullable=True),
        sa.Column("online", sa.Boolean(), nullable=True),
        sa.Column("status_t", ingest.tables.base.UtcDateTime(), nullable=True),
        sa.Column("energy_t", ingest.tables.base.UtcDateTime(), nullable=True),
        sa.Column("soc_pct", sa.Float(), nullable=True),
        sa.Column("battery_v", sa.Float(), nullable=True),
        sa.Column("fridge_t", ingest.tables.base.UtcDateTime(), nullable=True),
        sa.Column("fridge_temp_c", sa.Float(), nullable=True),
        sa.Column("fridge_door_open", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("vehicle"),
    )
    op.create_table(
        "vehicles",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("operator", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("traction", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "visit_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("visit_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("who", sa.String(length=100), nullable=False),
        sa.Column("at", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("arrival", ingest.tables.base.UtcDateTime(), nullable=True),
        sa.Column("departure", ingest.tables.base.UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("visit_changes", schema=None) as batch_op:
        batch_op.create_index("ix_visit_changes_visit", ["visit_id", "id"], unique=False)

    op.create_table(
        "visits",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("vehicle", sa.String(length=64), nullable=False),
        sa.Column("stop", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("scheduled_arrival", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("scheduled_departure", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("changed", sa.Boolean(), nullable=False),
        sa.Column("cancelled_reason", sa.String(length=200), nullable=True),
        sa.Column("on_time_from_s", sa.Float(), nullable=False),
        sa.Column("on_time_until_s", sa.Float(), nullable=False),
        sa.Column("closes_at", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("detected_arrival", ingest.tables.base.UtcDateTime(), nullable=True),
        sa.Column("detected_departure", ingest.tables.base.UtcDateTime(), nullable=True),
        sa.Column("eta", ingest.tables.base.UtcDateTime(), nullable=True),
        sa.Column("eta_from", ingest.tables.base.UtcDateTime(), nullable=True),
        sa.Column("eta_distance_m", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.create_index("ix_visits_day_vehicle", ["day", "vehicle"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_index("ix_visits_day_vehicle")

    op.drop_table("visits")
    with op.batch_alter_table("visit_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_visit_changes_visit")

    op.drop_table("visit_changes")
    op.drop_table("vehicles")
    op.drop_table("vehicle_state")
    with op.batch_alter_table("unscheduled_stops", schema=None) as batch_op:
        batch_op.drop_index("ix_unscheduled_day_vehicle")

    op.drop_table("unscheduled_stops")
    op.drop_table("timeseries_outbox")
    op.drop_table("stops")
    with op.batch_alter_table("stop_events", schema=None) as batch_op:
        batch_op.drop_index("ix_stop_events_vehicle_day")

    op.drop_table("stop_events")
    with op.batch_alter_table("rejections", schema=None) as batch_op:
        batch_op.drop_index("ix_rejections_reason")

    op.drop_table("rejections")
    with op.batch_alter_table("gps_samples", schema=None) as batch_op:
        batch_op.drop_index("ix_gps_vehicle_t")

    op.drop_table("gps_samples")
    with op.batch_alter_table("fridge_samples", schema=None) as batch_op:
        batch_op.drop_index("ix_fridge_vehicle_t")

    op.drop_table("fridge_samples")
    op.drop_table("events")
    with op.batch_alter_table("energy_samples", schema=None) as batch_op:
        batch_op.drop_index("ix_energy_vehicle_t")

    op.drop_table("energy_samples")
    op.drop_table("batches")
