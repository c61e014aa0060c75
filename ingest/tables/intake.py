"""What the buses send: vehicles, stops, batches and their samples, the live state,
rejected messages and the time-series outbox."""

from __future__ import annotations

import sqlalchemy as sa

from ingest.tables.base import UtcDateTime, metadata

vehicles = sa.Table(
    "vehicles",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("operator", sa.String(64), nullable=False),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("traction", sa.String(16), nullable=False),
)


stops = sa.Table(
    "stops",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("lon", sa.Float, nullable=False),
    sa.Column("radius_m", sa.Float, nullable=False),
    # Null until the fleet file is loaded again after the column was added: unknown, not 0.
    sa.Column("nearest_surgery_km", sa.Float),
)


# Which operators' vehicles use each stop (depot, timetable, one-off visits): what each
# operator's staff are shown.
stop_operators = sa.Table(
    "stop_operators",
    metadata,
    sa.Column("stop", sa.String(64), primary_key=True),
    sa.Column("operator", sa.String(64), primary_key=True),
)


# One row per accepted message: the de-duplication key.
batches = sa.Table(
    "batches",
    metadata,
    sa.Column("vehicle", sa.String(64), primary_key=True),
    sa.Column("stream", sa.String(16), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("samples", sa.Integer, nullable=False),
)


gps_samples = sa.Table(
    "gps_samples",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("vehicle", sa.String(64), nullable=False),
    sa.Column("t", UtcDateTime, nullable=False),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("lon", sa.Float, nullable=False),
    sa.Column("alt_m", sa.Float),
    sa.Column("speed_mps", sa.Float),
    sa.Column("course_deg", sa.Float),
    sa.Column("fix_mode", sa.SmallInteger, nullable=False),
    sa.Column("quality", sa.SmallInteger, nullable=False),
    sa.Column("sats", sa.SmallInteger),
    sa.Column("hdop", sa.Float),
    sa.Index("ix_gps_vehicle_t", "vehicle", "t"),
)


energy_samples = sa.Table(
    "energy_samples",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("vehicle", sa.String(64), nullable=False),
    sa.Column("t", UtcDateTime, nullable=False),
    sa.Column("voltage_v", sa.Float),
    sa.Column("current_a", sa.Float),
    sa.Column("power_w", sa.Float),
    sa.Column("soc_pct", sa.Float),
    sa.Column("consumed_ah", sa.Float),
    sa.Column("pv_power_w", sa.Float),
    sa.Column("yield_today_kwh", sa.Float),
    sa.Column("source", sa.String(8)),
    sa.Column("time_to_go_min", sa.Float),
    sa.Column("alarm", sa.Boolean),
    sa.Column("alarm_reason", sa.Integer),
    sa.Column("pv_voltage_v", sa.Float),
    sa.Column("charge_state", sa.String(32)),
    sa.Column("charger_error", sa.SmallInteger),
    sa.Column("yield_total_kwh", sa.Float),
    sa.Column("starter_voltage_v", sa.Float),
    sa.Index("ix_energy_vehicle_t", "vehicle", "t"),
)


fridge_samples = sa.Table(
    "fridge_samples",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("vehicle", sa.String(64), nullable=False),
    sa.Column("t", UtcDateTime, nullable=False),
    sa.Column("temp_c", sa.Float),
    sa.Column("humidity_pct", sa.Float),
    sa.Column("door_open", sa.Boolean),
    sa.Index("ix_fridge_vehicle_t", "vehicle", "t"),
)


# The engine's readings through an OBD-II adapter, where a bus has one.
obd_samples = sa.Table(
    "obd_samples",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("vehicle", sa.String(64), nullable=False),
    sa.Column("t", UtcDateTime, nullable=False),
    sa.Column("fuel_rate_l_per_h", sa.Float),
    sa.Column("fuel_level_pct", sa.Float),
    sa.Column("odometer_km", sa.Float),
    sa.Index("ix_obd_vehicle_t", "vehicle", "t"),
)


events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("vehicle", sa.String(64), nullable=False),
    sa.Column("t", UtcDateTime, nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)


# The latest known state of each vehicle, for live views.
vehicle_state = sa.Table(
    "vehicle_state",
    metadata,
    sa.Column("vehicle", sa.String(64), primary_key=True),
    sa.Column("last_seen", UtcDateTime),
    sa.Column("gps_t", UtcDateTime),
    sa.Column("lat", sa.Float),
    sa.Column("lon", sa.Float),
    sa.Column("speed_mps", sa.Float),
    sa.Column("course_deg", sa.Float),
    sa.Column("online", sa.Boolean),
    sa.Column("status_t", UtcDateTime),
    # When the newest status (by its own time) was received.
    sa.Column("status_seen_at", UtcDateTime),
    sa.Column("energy_t", UtcDateTime),
    sa.Column("soc_pct", sa.Float),
    sa.Column("battery_v", sa.Float),
    sa.Column("fridge_t", UtcDateTime),
    sa.Column("fridge_temp_c", sa.Float),
    sa.Column("fridge_door_open", sa.Boolean),
)


# Every rejected message, with why: an engineer reads this to fix a bus or a firmware.
rejections = sa.Table(
    "rejections",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("topic", sa.String(256), nullable=False),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("payload_bytes", sa.Integer, nullable=False),
    sa.Column("payload_head", sa.Text, nullable=False),
    # The whole message, up to the protocol's size limit: one that could not be stored
    # can be taken in again once what refused it is fixed.
    sa.Column("payload", sa.LargeBinary),
    sa.Index("ix_rejections_reason", "reason"),
)


# Points waiting for the time-series server, written with the samples they come from.
timeseries_outbox = sa.Table(
    "timeseries_outbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("line", sa.Text, nullable=False),
)
