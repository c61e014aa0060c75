"""The live snapshot: everything the staff web app's live push needs, read in one go.

The API polls this once per interval for all of its connected clients; each client's
view is then cut from it by operator. Visits are not sent: what changed about them (a
detection, an ETA, a coordinator's change) is, so clients re-read the day they show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ingest.alerts import storage as alert_storage
from ingest.alerts.records import AlertRecord
from ingest.store import Position, VehicleRow
from ingest.tables.intake import vehicle_state, vehicles
from ingest.tables.punctuality import unscheduled_stops, visit_changes, visits

# More active alerts than any fleet has at once; a client is sent its own newest 200.
MAX_ACTIVE_ALERTS = 10_000


@dataclass(frozen=True)
class VisitMark:
    """What a client's view of one visit depends on, as the ingest derived it."""

    vehicle: str
    day: date
    fingerprint: tuple[Any, ...]


@dataclass(frozen=True)
class ChangedVisit:
    visit_id: str
    vehicle: str
    day: date


@dataclass(frozen=True)
class LiveSnapshot:
    vehicles: list[VehicleRow]
    positions: list[Position]
    active_alerts: list[AlertRecord]
    # Visits of the watched days, by id; and per (vehicle, day) what the unscheduled stops
    # of that day look like.
    visit_marks: dict[str, VisitMark]
    unscheduled_marks: dict[tuple[str, date], tuple[Any, ...]]
    # Visits people changed since ``after_change``, and the newest change's id.
    changed_visits: list[ChangedVisit]
    change_cursor: int


def read_live_snapshot(
    engine: Engine, days: Sequence[date], after_change: int | None
) -> LiveSnapshot:
    """The fleet's state, active alerts and what marks the visits of ``days``; changes
    recorded after the change id ``after_change`` (None: just the newest id)."""
    vs = vehicle_state.c
    fleet_query = (
        sa.select(vehicles, vehicle_state)
        .select_from(vehicles.outerjoin(vehicle_state, vs.vehicle == vehicles.c.id))
        .order_by(vehicles.c.id)
    )
    v = visits.c
    visit_query = sa.select(
        v.id,
        v.vehicle,
        v.day,
        v.scheduled_arrival,
        v.scheduled_departure,
        v.detected_arrival,
        v.detected_departure,
        v.eta,
        v.eta_from,
        v.cancelled_reason,
    ).where(v.day.in_(list(days)))
    u = unscheduled_stops.c
    unscheduled_query = (
        sa.select(
            u.vehicle, u.day, sa.func.count(), sa.func.max(u.arrival), sa.func.max(u.departure)
        )
        .where(u.day.in_(list(days)))
        .group_by(u.vehicle, u.day)
    )
    c = visit_changes.c
    with engine.connect() as conn:
        fleet = conn.execute(fleet_query).all()
        marks = {r.id: VisitMark(r.vehicle, r.day, tuple(r)[3:]) for r in conn.execute(visit_query)}
        unscheduled = {(r[0], r[1]): tuple(r)[2:] for r in conn.execute(unscheduled_query)}
        newest = conn.execute(sa.select(sa.func.max(c.id))).scalar()
        cursor = int(newest or 0)
        changed: list[ChangedVisit] = []
        if after_change is not None and cursor > after_change:
            query = (
                sa.select(c.visit_id, v.vehicle, v.day)
                .select_from(visit_changes.join(visits, v.id == c.visit_id))
                .where(c.id > after_change, c.id <= cursor)
                .order_by(c.id)
            )
            changed = [ChangedVisit(r[0], r[1], r[2]) for r in conn.execute(query)]
    alerts = alert_storage.list_alerts(engine, active=True, limit=MAX_ACTIVE_ALERTS)
    return LiveSnapshot(
        vehicles=[_vehicle(r) for r in fleet],
        positions=[_position(r) for r in fleet if r.gps_t is not None],
        active_alerts=alerts,
        visit_marks=marks,
        unscheduled_marks=unscheduled,
        changed_visits=changed,
        change_cursor=cursor,
    )


def _vehicle(r: Any) -> VehicleRow:
    return VehicleRow(
        r.id,
        r.operator,
        r.label,
        r.traction,
        r.last_seen,
        r.online,
        r.soc_pct,
        r.battery_v,
        r.energy_t,
        r.fridge_temp_c,
        r.fridge_door_open,
        r.fridge_t,
    )


def _position(r: Any) -> Position:
    when: datetime = r.gps_t
    return Position(
        r.id,
        r.operator,
        r.label,
        when,
        r.lat,
        r.lon,
        r.speed_mps,
        r.course_deg,
        r.online,
        r.last_seen,
    )
