"""Fridge alarms and daily records in the system of record (SQLAlchemy Core)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ingest.acknowledgement import AckOutcome, acknowledge
from ingest.coldchain.daily import FridgeDay
from ingest.coldchain.reconcile import AlarmPlan, StoredAlarm
from ingest.coldchain.records import FridgeAlarmChanged, FridgeDayRecorded
from ingest.coldchain.rules import AlarmKind, FridgeAlarm, HeldReading, Reading, TemperatureRun
from ingest.store import emit, points_wanted
from ingest.tables.coldchain import fridge_alarms, fridge_days
from ingest.tables.intake import fridge_samples, vehicles

# --- readings ------------------------------------------------------------------------


@dataclass(frozen=True)
class NeutralBand:
    """Temperatures that meet no rule (in range, no alarm): no run crosses such a reading."""

    at_least_c: float
    above_c: float
    at_most_c: float


def _usable(vehicle: str) -> Any:
    c = fridge_samples.c
    return sa.and_(c.vehicle == vehicle, c.temp_c.is_not(None))


def _neutral(band: NeutralBand) -> Any:
    c = fridge_samples.c
    return sa.and_(c.temp_c >= band.at_least_c, c.temp_c > band.above_c, c.temp_c <= band.at_most_c)


def neutral_at_or_before(
    conn: Connection, vehicle: str, t: datetime, band: NeutralBand
) -> datetime | None:
    c = fridge_samples.c
    query = sa.select(sa.func.max(c.t)).where(_usable(vehicle), _neutral(band), c.t <= t)
    found: datetime | None = conn.execute(query).scalar_one()
    return found


def neutral_at_or_after(
    conn: Connection, vehicle: str, t: datetime, band: NeutralBand
) -> datetime | None:
    c = fridge_samples.c
    query = sa.select(sa.func.min(c.t)).where(_usable(vehicle), _neutral(band), c.t >= t)
    found: datetime | None = conn.execute(query).scalar_one()
    return found


def reading_before(conn: Connection, vehicle: str, t: datetime) -> datetime | None:
    """Time of the last reading with a temperature strictly before ``t``."""
    c = fridge_samples.c
    query = sa.select(sa.func.max(c.t)).where(_usable(vehicle), c.t < t)
    found: datetime | None = conn.execute(query).scalar_one()
    return found


def readings(
    conn: Connection, vehicle: str, start: datetime | None, end: datetime | None
) -> list[Reading]:
    """Readings with a temperature in ``[start, end]`` (either bound may be open)."""
    c = fridge_samples.c
    query = sa.select(c.t, c.temp_c).where(_usable(vehicle)).order_by(c.t, c.id)
    if start is not None:
        query = query.where(c.t >= start)
    if end is not None:
        query = query.where(c.t <= end)
    # Unpacked: Row.t is the row as a tuple, not the column named t.
    return [Reading(t, temp) for t, temp in conn.execute(query)]


def reading_span(conn: Connection, vehicle: str) -> tuple[datetime, datetime] | None:
    c = fridge_samples.c
    query = sa.select(sa.func.min(c.t), sa.func.max(c.t)).where(_usable(vehicle))
    first, last = conn.execute(query).one()
    return None if first is None else (first, last)


# --- alarms ----------------------------------------------------------------------------


def _stored(row: Any) -> StoredAlarm:
    return StoredAlarm(
        id=int(row.id),
        kind=row.kind,
        key=row.key,
        run_start=row.run_start,
        run_end=row.run_end,
        raised_at=row.raised_at,
        peak_c=row.peak_c,
        ongoing=row.ongoing,
        cut_by_gap=row.cut_by_gap,
        withdrawn=row.withdrawn_at is not None,
    )


def alarms_overlapping(
    conn: Connection, vehicle: str, start: datetime | None, end: datetime | None
) -> list[StoredAlarm]:
    """Alarms (withdrawn ones too) whose run touches ``[start, end]``, and every alarm
    still ongoing: a reading after its run, however far, ends it."""
    c = fridge_alarms.c
    touching: sa.ColumnElement[bool] = sa.true()
    if start is not None:
        touching = sa.and_(touching, c.run_end >= start)
    if end is not None:
        touching = sa.and_(touching, c.run_start <= end)
    query = (
        sa.select(fridge_alarms)
        .where(c.vehicle == vehicle, sa.or_(touching, c.ongoing.is_(True)))
        .order_by(c.run_start, c.id)
    )
    return [_stored(r) for r in conn.execute(query)]


def _alarm_values(alarm: FridgeAlarm) -> dict[str, Any]:
    return {
        "kind": alarm.kind,
        "key": alarm.key,
        "run_start": alarm.run.start,
        "run_end": alarm.run.end,
        "raised_at": alarm.raised_at,
        "peak_c": alarm.peak_c,
        "ongoing": alarm.run.ongoing,
        "cut_by_gap": alarm.run.cut_by_gap,
    }


def apply_plan(conn: Connection, vehicle: str, plan: AlarmPlan, now: datetime) -> None:
    """Write the plan, and hand every alarm it touches to the time-series outbox."""
    c = fridge_alarms.c
    touched = [i for i, _ in plan.update] + list(plan.withdraw)
    pointed = points_wanted(conn)
    before = _alarms_by_id(conn, touched) if pointed and touched else {}
    for stored_id, alarm in plan.update:
        conn.execute(
            fridge_alarms.update()
            .where(c.id == stored_id)
            .values(**_alarm_values(alarm), withdrawn_at=None, updated_at=now)
        )
    if plan.insert:
        conn.execute(
            fridge_alarms.insert(),
            [
                {"vehicle": vehicle, **_alarm_values(a), "updated_at": now, "withdrawn_at": None}
                for a in plan.insert
            ],
        )
    if plan.withdraw:
        conn.execute(
            fridge_alarms.update()
            .where(c.id.in_(plan.withdraw))
            .values(withdrawn_at=now, ongoing=False, updated_at=now)
        )
    if pointed:
        ids = list(touched)
        if plan.insert:
            inserted = sa.select(c.id).where(
                c.vehicle == vehicle, c.key.in_([a.key for a in plan.insert])
            )
            ids.extend(int(r.id) for r in conn.execute(inserted))
        after = _alarms_by_id(conn, ids)
        emit(
            conn,
            [
                FridgeAlarmChanged(vehicle, after[alarm_id], before.get(alarm_id))
                for alarm_id in sorted(after)
            ],
        )


def _alarms_by_id(conn: Connection, ids: Iterable[int]) -> dict[int, StoredAlarm]:
    query = sa.select(fridge_alarms).where(fridge_alarms.c.id.in_(list(ids)))
    return {int(r.id): _stored(r) for r in conn.execute(query)}


def as_fridge_alarm(stored: StoredAlarm) -> FridgeAlarm:
    """A stored alarm in the shape the daily records take. Its run is one reading held
    over the whole run at the peak temperature: start, end, duration and peak are the
    stored ones, which is all a daily record reads from it."""
    reading = HeldReading(stored.run_start, stored.run_end, stored.peak_c)
    run = TemperatureRun((reading,), ongoing=stored.ongoing, cut_by_gap=stored.cut_by_gap)
    return FridgeAlarm(stored.kind, run, stored.raised_at)


@dataclass(frozen=True)
class FridgeAlarmRecord:
    """A stored alarm as people see it: with its vehicle and acknowledgement."""

    id: int
    vehicle: str
    operator: str
    kind: AlarmKind
    key: str
    run_start: datetime
    run_end: datetime
    raised_at: datetime
    peak_c: float
    ongoing: bool
    cut_by_gap: bool
    withdrawn_at: datetime | None
    ack_by: str | None
    ack_at: datetime | None
    ack_comment: str | None

    @property
    def duration(self) -> timedelta:
        return self.run_end - self.run_start


def vehicles_with_alarms_near(
    conn: Connection, vehicles: Iterable[str], start: datetime, end: datetime
) -> set[str]:
    """Those of ``vehicles`` with an ongoing alarm, or one whose run touches
    ``[start, end]``."""
    c = fridge_alarms.c
    query = (
        sa.select(c.vehicle)
        .distinct()
        .where(
            c.vehicle.in_(list(vehicles)),
            c.withdrawn_at.is_(None),
            sa.or_(c.ongoing.is_(True), sa.and_(c.run_end >= start, c.run_start <= end)),
        )
    )
    return {r[0] for r in conn.execute(query)}


def _record(row: Any) -> FridgeAlarmRecord:
    return FridgeAlarmRecord(
        id=int(row.id),
        vehicle=row.vehicle,
        operator=row.operator,
        kind=row.kind,
        key=row.key,
        run_start=row.run_start,
        run_end=row.run_end,
        raised_at=row.raised_at,
        peak_c=row.peak_c,
        ongoing=row.ongoing,
        cut_by_gap=row.cut_by_gap,
        withdrawn_at=row.withdrawn_at,
        ack_by=row.ack_by,
        ack_at=row.ack_at,
        ack_comment=row.ack_comment,
    )


def _with_operator() -> Any:
    return sa.select(fridge_alarms, vehicles.c.operator).select_from(
        fridge_alarms.join(vehicles, vehicles.c.id == fridge_alarms.c.vehicle)
    )


def list_alarms(
    engine: Engine,
    *,
    vehicle_ids: Iterable[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    ongoing: bool | None = None,
    include_withdrawn: bool = False,
    limit: int = 1000,
) -> list[FridgeAlarmRecord]:
    """Alarms whose run touches ``[start, end)``, newest first."""
    c = fridge_alarms.c
    query = _with_operator().order_by(c.raised_at.desc(), c.id.desc()).limit(limit)
    if vehicle_ids is not None:
        query = query.where(c.vehicle.in_(list(vehicle_ids)))
    if start is not None:
        query = query.where(c.run_end >= start)
    if end is not None:
        query = query.where(c.run_start < end)
    if ongoing is not None:
        query = query.where(c.ongoing.is_(ongoing))
    if not include_withdrawn:
        query = query.where(c.withdrawn_at.is_(None))
    with engine.connect() as conn:
        return [_record(r) for r in conn.execute(query)]


def alarm(conn: Connection, alarm_id: int) -> FridgeAlarmRecord | None:
    row = conn.execute(_with_operator().where(fridge_alarms.c.id == alarm_id)).first()
    return None if row is None else _record(row)


def stored_alarms(conn: Connection, vehicle: str, since: datetime) -> list[StoredAlarm]:
    """Alarms still ongoing, and those raised since ``since``."""
    c = fridge_alarms.c
    query = (
        sa.select(fridge_alarms)
        .where(c.vehicle == vehicle, sa.or_(c.ongoing.is_(True), c.raised_at >= since))
        .order_by(c.id)
    )
    return [_stored(r) for r in conn.execute(query)]


def acknowledge_alarm(
    conn: Connection, alarm_id: int, who: str, when: datetime, comment: str | None
) -> AckOutcome:
    return acknowledge(conn, fridge_alarms, alarm_id, who=who, when=when, comment=comment)


# --- daily records ---------------------------------------------------------------------


@dataclass(frozen=True)
class StoredFridgeDay:
    vehicle: str
    record: FridgeDay
    zone: str
    complete: bool
    basis: str


def save_day(
    conn: Connection,
    vehicle: str,
    record: FridgeDay,
    *,
    zone: str,
    complete: bool,
    basis: str,
    now: datetime,
) -> None:
    """Store a vehicle-day's fridge record in place of the one there was, and hand it to
    the time-series outbox."""
    c = fridge_days.c
    conn.execute(fridge_days.delete().where(c.vehicle == vehicle, c.day == record.day))
    conn.execute(
        fridge_days.insert().values(
            vehicle=vehicle,
            day=record.day,
            zone=zone,
            status=record.status,
            samples=record.samples,
            min_c=record.min_c,
            max_c=record.max_c,
            in_range_s=record.in_range.total_seconds(),
            above_s=record.above.total_seconds(),
            below_s=record.below.total_seconds(),
            no_data_s=record.no_data.total_seconds(),
            excursions=record.excursions,
            heat_alarm=record.heat_alarm,
            freeze_alarm=record.freeze_alarm,
            early_warning=record.early_warning,
            complete=complete,
            basis=basis,
            computed_at=now,
        )
    )
    emit(conn, [FridgeDayRecorded(vehicle, record, zone, complete)])


def forget_day(conn: Connection, vehicle: str, day: date) -> None:
    c = fridge_days.c
    conn.execute(fridge_days.delete().where(c.vehicle == vehicle, c.day == day))


def _day(row: Any) -> StoredFridgeDay:
    return StoredFridgeDay(
        vehicle=row.vehicle,
        record=FridgeDay(
            day=row.day,
            samples=row.samples,
            min_c=row.min_c,
            max_c=row.max_c,
            in_range=timedelta(seconds=row.in_range_s),
            above=timedelta(seconds=row.above_s),
            below=timedelta(seconds=row.below_s),
            no_data=timedelta(seconds=row.no_data_s),
            excursions=row.excursions,
            heat_alarm=row.heat_alarm,
            freeze_alarm=row.freeze_alarm,
            early_warning=row.early_warning,
        ),
        zone=row.zone,
        complete=row.complete,
        basis=row.basis,
    )


def days(engine: Engine, vehicle: str, first: date, last: date) -> list[StoredFridgeDay]:
    c = fridge_days.c
    query = (
        sa.select(fridge_days)
        .where(c.vehicle == vehicle, c.day >= first, c.day <= last)
        .order_by(c.day)
    )
    with engine.connect() as conn:
        return [_day(r) for r in conn.execute(query)]


def incomplete_days(conn: Connection, before: date) -> list[tuple[str, date]]:
    """Records made while their day was still going on, for days now over."""
    c = fridge_days.c
    query = sa.select(c.vehicle, c.day).where(c.complete.is_(False), c.day < before)
    return [(r.vehicle, r.day) for r in conn.execute(query)]
