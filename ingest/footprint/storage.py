"""Daily footprint records in the system of record, and the stored samples they are
computed from (SQLAlchemy Core)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ingest.footprint.emissions import FactorSetRef
from ingest.footprint.energy import EngineFlag
from ingest.footprint.records import StoredFootprintDay
from ingest.store import emit
from ingest.tables.footprint import footprint_days
from ingest.tables.intake import energy_samples, events, gps_samples, obd_samples
from protocol.wire import EnergySample, GpsSample

# Events from the bus's ignition input: the engine (or the traction system) switched on
# or off. Without any, idling cannot be measured and is reported as such.
ENGINE_ON_EVENT = "engine_on"
ENGINE_OFF_EVENT = "engine_off"


def save_day(conn: Connection, values: dict[str, Any]) -> None:
    """Store a vehicle-day's footprint (a row of ``footprint_days``) in place of the one
    there was, and hand it to the time-series outbox."""
    c = footprint_days.c
    conn.execute(
        footprint_days.delete().where(c.vehicle == values["vehicle"], c.day == values["day"])
    )
    conn.execute(footprint_days.insert().values(**values))
    emit(conn, [_day(values)])


def forget_day(conn: Connection, vehicle: str, day: date) -> None:
    c = footprint_days.c
    conn.execute(footprint_days.delete().where(c.vehicle == vehicle, c.day == day))


def _day(row: Mapping[str, Any] | sa.RowMapping) -> StoredFootprintDay:
    return StoredFootprintDay(
        vehicle=row["vehicle"],
        day=row["day"],
        zone=row["zone"],
        distance_km=row["distance_km"],
        fixes_kept=row["fixes_kept"],
        fixes_rejected=row["fixes_rejected"],
        traction_carrier=row["traction_carrier"],
        traction_quantity=row["traction_quantity"],
        idling_measured=row["idling_measured"],
        idling=timedelta(seconds=row["idling_s"]),
        idling_quantity=row["idling_quantity"],
        idling_rate_per_h=row["idling_rate_per_h"],
        idling_source=row["idling_source"],
        aux_drawn_kwh=row["aux_drawn_kwh"],
        aux_charged_kwh=row["aux_charged_kwh"],
        aux_integrated=timedelta(seconds=row["aux_integrated_s"]),
        aux_gap=timedelta(seconds=row["aux_gap_s"]),
        solar_kwh=row["solar_kwh"],
        solar_method=row["solar_method"],
        ttw_kgco2e=row["ttw_kgco2e"],
        wtt_kgco2e=row["wtt_kgco2e"],
        factor_set=FactorSetRef(
            id=row["factor_set_id"],
            version=row["factor_set_version"],
            date=row["factor_set_date"],
            source=row["factor_set_source"],
        ),
        complete=row["complete"],
        fuel_source=row["fuel_source"],
        measured_fuel_l=row["measured_fuel_l"],
        measured_coverage=row["measured_coverage"],
    )


def days(engine: Engine, vehicle: str, first: date, last: date) -> list[StoredFootprintDay]:
    c = footprint_days.c
    query = (
        sa.select(footprint_days)
        .where(c.vehicle == vehicle, c.day >= first, c.day <= last)
        .order_by(c.day)
    )
    with engine.connect() as conn:
        return [_day(r._mapping) for r in conn.execute(query)]


# --- the samples a day is computed from ------------------------------------------------

_GPS_FIELDS = tuple(c.name for c in gps_samples.c if c.name not in ("id", "vehicle"))
_ENERGY_FIELDS = tuple(c.name for c in energy_samples.c if c.name not in ("id", "vehicle"))


def fixes(conn: Connection, vehicle: str, start: datetime, end: datetime) -> list[GpsSample]:
    """Fixes in ``[start, end)``, as stored (they were validated on the way in)."""
    c = gps_samples.c
    query = (
        sa.select(*(c[name] for name in _GPS_FIELDS))
        .where(c.vehicle == vehicle, c.t >= start, c.t < end)
        .order_by(c.t, c.id)
    )
    # Built without validating again: a day holds tens of thousands of fixes.
    return [GpsSample(**r._mapping) for r in conn.execute(query)]


def energy(conn: Connection, vehicle: str, start: datetime, end: datetime) -> list[EnergySample]:
    c = energy_samples.c
    query = (
        sa.select(*(c[name] for name in _ENERGY_FIELDS))
        .where(c.vehicle == vehicle, c.t >= start, c.t < end)
        .order_by(c.t, c.id)
    )
    return [EnergySample(**r._mapping) for r in conn.execute(query)]


def fuel_rates(
    conn: Connection, vehicle: str, start: datetime, end: datetime
) -> list[tuple[datetime, float]]:
    """The engine's fuel rate readings (OBD-II) in ``[start, end)``, in time order."""
    c = obd_samples.c
    query = (
        sa.select(c.t, c.fuel_rate_l_per_h)
        .where(c.vehicle == vehicle, c.t >= start, c.t < end, c.fuel_rate_l_per_h.is_not(None))
        .order_by(c.t, c.id)
    )
    return [(r._mapping["t"], float(r._mapping["fuel_rate_l_per_h"])) for r in conn.execute(query)]


def last_charger_reading_before(conn: Connection, vehicle: str, t: datetime) -> EnergySample | None:
    c = energy_samples.c
    query = (
        sa.select(*(c[name] for name in _ENERGY_FIELDS))
        .where(c.vehicle == vehicle, c.t < t, c.yield_today_kwh.is_not(None))
        .order_by(c.t.desc(), c.id.desc())
        .limit(1)
    )
    row = conn.execute(query).first()
    return None if row is None else EnergySample(**row._mapping)


def engine_flags(
    conn: Connection, vehicle: str, start: datetime, end: datetime
) -> list[EngineFlag]:
    """Engine switches in ``[start, end)``, and the last one before ``start`` (the state
    the engine was in when the window opened)."""
    c = events.c
    kinds = (ENGINE_ON_EVENT, ENGINE_OFF_EVENT)
    mine = sa.and_(c.vehicle == vehicle, c.kind.in_(kinds))
    before = conn.execute(
        sa.select(c.t, c.kind).where(mine, c.t < start).order_by(c.t.desc(), c.id.desc()).limit(1)
    ).first()
    within = conn.execute(
        sa.select(c.t, c.kind).where(mine, c.t >= start, c.t < end).order_by(c.t, c.id)
    ).all()
    rows = ([before] if before is not None else []) + list(within)
    # Row.t is the row as a tuple, not the column named t.
    return [EngineFlag(r[0], r[1] == ENGINE_ON_EVENT) for r in rows]


def has_engine_flags(conn: Connection, vehicle: str, until: datetime) -> bool:
    c = events.c
    query = (
        sa.select(c.id)
        .where(c.vehicle == vehicle, c.kind.in_((ENGINE_ON_EVENT, ENGINE_OFF_EVENT)), c.t < until)
        .limit(1)
    )
    return conn.execute(query).first() is not None


def data_span(conn: Connection, vehicle: str) -> tuple[datetime, datetime] | None:
    """First and last sample time of the vehicle's fixes and energy readings."""
    spans = []
    for table in (gps_samples, energy_samples):
        c = table.c
        first, last = conn.execute(
            sa.select(sa.func.min(c.t), sa.func.max(c.t)).where(c.vehicle == vehicle)
        ).one()
        if first is not None:
            spans.append((first, last))
    if not spans:
        return None
    return min(s[0] for s in spans), max(s[1] for s in spans)


def incomplete_days(conn: Connection, before: date) -> list[tuple[str, date]]:
    """Records made while their day was still going on, for days now over."""
    c = footprint_days.c
    query = sa.select(c.vehicle, c.day).where(c.complete.is_(False), c.day < before)
    return [(r.vehicle, r.day) for r in conn.execute(query)]
