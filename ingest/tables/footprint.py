"""Each bus's daily energy and emissions."""

from __future__ import annotations

import sqlalchemy as sa

from ingest.tables.base import UtcDateTime, metadata

footprint_days = sa.Table(
    "footprint_days",
    metadata,
    sa.Column("vehicle", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("zone", sa.String(64), nullable=False),
    sa.Column("distance_km", sa.Float, nullable=False),
    sa.Column("fixes_kept", sa.Integer, nullable=False),
    sa.Column("fixes_rejected", sa.Integer, nullable=False),
    sa.Column("traction_carrier", sa.String(16), nullable=False),
    sa.Column("traction_quantity", sa.Float, nullable=False),
    sa.Column("idling_measured", sa.Boolean, nullable=False),
    sa.Column("idling_s", sa.Float, nullable=False),
    sa.Column("idling_quantity", sa.Float, nullable=False),
    sa.Column("idling_rate_per_h", sa.Float, nullable=False),
    sa.Column("idling_source", sa.Text, nullable=False),
    sa.Column("aux_drawn_kwh", sa.Float, nullable=False),
    sa.Column("aux_charged_kwh", sa.Float, nullable=False),
    sa.Column("aux_integrated_s", sa.Float, nullable=False),
    sa.Column("aux_gap_s", sa.Float, nullable=False),
    sa.Column("solar_kwh", sa.Float),
    sa.Column("solar_method", sa.String(16)),
    # "measured": CO₂e from the fuel the engine reported (OBD-II); "model": from distance,
    # consumption and idling. The measured litres and the share of driving they cover are
    # kept either way.
    sa.Column("fuel_source", sa.String(16), nullable=False, server_default="model"),
    sa.Column("measured_fuel_l", sa.Float),
    sa.Column("measured_coverage", sa.Float),
    sa.Column("ttw_kgco2e", sa.Float, nullable=False),
    sa.Column("wtt_kgco2e", sa.Float, nullable=False),
    sa.Column("factor_set_id", sa.String(64), nullable=False),
    sa.Column("factor_set_version", sa.String(32), nullable=False),
    sa.Column("factor_set_date", sa.Date, nullable=False),
    sa.Column("factor_set_source", sa.Text, nullable=False),
    sa.Column("complete", sa.Boolean, nullable=False),
    sa.Column("basis", sa.String(32), nullable=False),
    sa.Column("computed_at", UtcDateTime, nullable=False),
)
