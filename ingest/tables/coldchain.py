"""The fridge's alarms and its daily records."""

from __future__ import annotations

import sqlalchemy as sa

from ingest.tables.base import ROW_ID, UtcDateTime, metadata

fridge_alarms = sa.Table(
    "fridge_alarms",
    metadata,
    sa.Column("id", ROW_ID, primary_key=True),
    sa.Column("vehicle", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("key", sa.String(80), nullable=False),
    sa.Column("run_start", UtcDateTime, nullable=False),
    sa.Column("run_end", UtcDateTime, nullable=False),
    sa.Column("raised_at", UtcDateTime, nullable=False),
    sa.Column("peak_c", sa.Float, nullable=False),
    sa.Column("ongoing", sa.Boolean, nullable=False),
    sa.Column("cut_by_gap", sa.Boolean, nullable=False),
    # The readings no longer show this alarm (late data changed the picture); kept,
    # with its acknowledgement, for the record.
    sa.Column("withdrawn_at", UtcDateTime),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("ack_by", sa.String(100)),
    sa.Column("ack_at", UtcDateTime),
    sa.Column("ack_comment", sa.Text),
    sa.UniqueConstraint("vehicle", "key", name="uq_fridge_alarms_vehicle_key"),
    sa.Index("ix_fridge_alarms_vehicle_run", "vehicle", "run_start"),
)


fridge_days = sa.Table(
    "fridge_days",
    metadata,
    sa.Column("vehicle", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("zone", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("samples", sa.Integer, nullable=False),
    sa.Column("min_c", sa.Float),
    sa.Column("max_c", sa.Float),
    sa.Column("in_range_s", sa.Float, nullable=False),
    sa.Column("above_s", sa.Float, nullable=False),
    sa.Column("below_s", sa.Float, nullable=False),
    sa.Column("no_data_s", sa.Float, nullable=False),
    sa.Column("excursions", sa.Integer, nullable=False),
    sa.Column("heat_alarm", sa.Boolean, nullable=False),
    sa.Column("freeze_alarm", sa.Boolean, nullable=False),
    sa.Column("early_warning", sa.Boolean, nullable=False),
    # False while the day was still being observed when the record was made.
    sa.Column("complete", sa.Boolean, nullable=False),
    sa.Column("basis", sa.String(32), nullable=False),
    sa.Column("computed_at", UtcDateTime, nullable=False),
)
