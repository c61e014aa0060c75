"""cold chain, footprint and alerts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 17:44:10.219946
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ingest.tables.base

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_notifications",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", ingest.tables.base.UtcDateTime(), nullable=True),
        sa.Column("delivered_at", ingest.tables.base.UtcDateTime(), nullable=True),
        sa.Column("abandoned_at", ingest.tables.base.UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alert_notifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_alert_notifications_open", ["delivered_at", "abandoned_at"], unique=False
        )

    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("vehicle", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("since", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("ended", ingest.tables.base.UtcDateTime(), nullable=True),
        sa.Column("raised_at", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("cleared_at", ingest.tables.base.UtcDateTime(), nullable=True),
        sa.Column("ack_by", sa.String(length=100), nullable=True),
        sa.Column("ack_at", ingest.tables.base.UtcDateTime(), nullable=True),
        sa.Column("ack_comment", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("vehicle", "kind", "subject", "since", name="uq_alerts_episode"),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index("ix_alerts_raised", ["raised_at"], unique=False)
        batch_op.create_index(
            "uq_alerts_active",
            ["vehicle", "kind", "subject"],
            unique=True,
            sqlite_where=sa.text("cleared_at IS NULL"),
            postgresql_where=sa.text("cleared_at IS NULL"),
        )

    op.create_table(
        "footprint_days",
        sa.Column("vehicle", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("distance_km", sa.Float(), nullable=False),
        sa.Column("fixes_kept", sa.Integer(), nullable=False),
        sa.Column("fixes_rejected", sa.Integer(), nullable=False),
        sa.Column("traction_carrier", sa.String(length=16), nullable=False),
        sa.Column("traction_quantity", sa.Float(), nullable=False),
        sa.Column("idling_measured", sa.Boolean(), nullable=False),
        sa.Column("idling_s", sa.Float(), nullable=False),
        sa.Column("idling_quantity", sa.Float(), nullable=False),
        sa.Column("idling_rate_per_h", sa.Float(), nullable=False),
        sa.Column("idling_source", sa.Text(), nullable=False),
        sa.Column("aux_drawn_kwh", sa.Float(), nullable=False),
        sa.Column("aux_charged_kwh", sa.Float(), nullable=False),
        sa.Column("aux_integrated_s", sa.Float(), nullable=False),
        sa.Column("aux_gap_s", sa.Float(), nullable=False),
        sa.Column("solar_kwh", sa.Float(), nullable=True),
        sa.Column("solar_method", sa.String(length=16), nullable=True),
        sa.Column("ttw_kgco2e", sa.Float(), nullable=False),
        sa.Column("wtt_kgco2e", sa.Float(), nullable=False),
        sa.Column("factor_set_id", sa.String(length=64), nullable=False),
        sa.Column("factor_set_version", sa.String(length=32), nullable=False),
        sa.Column("factor_set_date", sa.Date(), nullable=False),
        sa.Column("factor_set_source", sa.Text(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("basis", sa.String(length=32), nullable=False),
        sa.Column("computed_at", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("vehicle", "day"),
    )
    op.create_table(
        "fridge_alarms",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("vehicle", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("run_start", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("run_end", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("raised_at", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("peak_c", sa.Float(), nullable=False),
        sa.Column("ongoing", sa.Boolean(), nullable=False),
        sa.Column("cut_by_gap", sa.Boolean(), nullable=False),
        sa.Column("withdrawn_at", ingest.tables.base.UtcDateTime(), nullable=True),
        sa.Column("updated_at", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("ack_by", sa.String(length=100), nullable=True),
        sa.Column("ack_at", ingest.tables.base.UtcDateTime(), nullable=True),
        sa.Column("ack_comment", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("vehicle", "key", name="uq_fridge_alarms_vehicle_key"),
    )
    with op.batch_alter_table("fridge_alarms", schema=None) as batch_op:
        batch_op.create_index(
            "ix_fridge_alarms_vehicle_run", ["vehicle", "run_start"], unique=False
        )

    op.create_table(
        "fridge_days",
        sa.Column("vehicle", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("min_c", sa.Float(), nullable=True),
        sa.Column("max_c", sa.Float(), nullable=True),
        sa.Column("in_range_s", sa.Float(), nullable=False),
        sa.Column("above_s", sa.Float(), nullable=False),
        sa.Column("below_s", sa.Float(), nullable=False),
        sa.Column("no_data_s", sa.Float(), nullable=False),
        sa.Column("excursions", sa.Integer(), nullable=False),
        sa.Column("heat_alarm", sa.Boolean(), nullable=False),
        sa.Column("freeze_alarm", sa.Boolean(), nullable=False),
        sa.Column("early_warning", sa.Boolean(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("basis", sa.String(length=32), nullable=False),
        sa.Column("computed_at", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("vehicle", "day"),
    )
    op.create_table(
        "pending_days",
        sa.Column("vehicle", sa.String(length=64), nullable=False),
        sa.Column("record", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("marked_at", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("vehicle", "record", "day"),
    )
    op.create_table(
        "record_bases",
        sa.Column("vehicle", sa.String(length=64), nullable=False),
        sa.Column("record", sa.String(length=16), nullable=False),
        sa.Column("basis", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("vehicle", "record"),
    )
    op.create_table(
        "report_configuration",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("recorded_at", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "vehicle_links",
        sa.Column("vehicle", sa.String(length=64), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("status_t", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("observed_at", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("vehicle"),
    )


def downgrade() -> None:
    op.drop_table("vehicle_links")
    op.drop_table("report_configuration")
    op.drop_table("record_bases")
    op.drop_table("pending_days")
    op.drop_table("fridge_days")
    with op.batch_alter_table("fridge_alarms", schema=None) as batch_op:
        batch_op.drop_index("ix_fridge_alarms_vehicle_run")

    op.drop_table("fridge_alarms")
    op.drop_table("footprint_days")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_alerts_active",
            sqlite_where=sa.text("cleared_at IS NULL"),
            postgresql_where=sa.text("cleared_at IS NULL"),
        )
        batch_op.drop_index("ix_alerts_raised")

    op.drop_table("alerts")
    with op.batch_alter_table("alert_notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_notifications_open")

    op.drop_table("alert_notifications")
