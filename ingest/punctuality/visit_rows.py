"""Visits as coordinators read and change them: the materialised visit with its operator
and stop name, the changes people made to it, and the stays no visit explains.

Functions over a connection the caller holds, so that a command (confirm, correct,
cancel, attendance, notice) reads, decides and appends in the caller's transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ingest.follow_up.consultations import consultations_json, consultations_of
from ingest.punctuality.eta import EtaSource, EtaState
from ingest.punctuality.ledger import (
    ChangeKind,
    CoordinatorChange,
    VisitFacts,
    VisitStanding,
    visit_state,
)
from ingest.store import emit, points_wanted
from ingest.tables.intake import stops, vehicles
from ingest.tables.punctuality import unscheduled_stops, visit_changes, visits

# Coordinators' changes are read in chunks: an IN list of a few hundred ids stays within
# every driver's limits.
_CHUNK = 500


@dataclass(frozen=True)
class VisitRow:
    """A materialised visit with what the ingest derived about it."""

    id: str
    vehicle: str
    operator: str
    stop: str
    stop_name: str
    day: date
    origin: str
    changed: bool
    facts: VisitFacts
    eta: datetime | None
    eta_from: datetime | None
    eta_distance_m: float | None
    # The stop's distance to the nearest surgery, as the fleet file last loaded says.
    nearest_surgery_km: float | None = None
    eta_state: EtaState | None = None
    eta_earliest: datetime | None = None
    eta_latest: datetime | None = None
    eta_source: EtaSource | None = None


@dataclass(frozen=True)
class UnscheduledStop:
    vehicle: str
    operator: str
    day: date
    stop: str
    stop_name: str
    arrival: datetime
    departure: datetime | None
    arrival_earliest: datetime | None = None
    arrival_latest: datetime | None = None


def _change_of(row: Any) -> CoordinatorChange:
    kind: ChangeKind = row.kind
    return CoordinatorChange(
        kind,
        row.who,
        row.at,
        row.reason,
        row.arrival,
        row.departure,
        row.patients_seen,
        row.note,
        public_message=row.public_message,
        consultations=consultations_of(row.consultations),
    )


def changes(conn: Connection, visit_ids: Iterable[str]) -> dict[str, list[CoordinatorChange]]:
    ids = list(visit_ids)
    found: dict[str, list[CoordinatorChange]] = defaultdict(list)
    c = visit_changes.c
    for i in range(0, len(ids), _CHUNK):
        query = sa.select(visit_changes).where(c.visit_id.in_(ids[i : i + _CHUNK]))
        for r in conn.execute(query.order_by(c.id)):
            found[r.visit_id].append(_change_of(r))
    return dict(found)


def visit_standing(
    row: VisitRow, changes: Sequence[CoordinatorChange], as_of: datetime
) -> VisitStanding:
    """The visit as it stands at ``as_of``, for the time-series outbox."""
    return VisitStanding(row.vehicle, row.stop, row.facts, visit_state(row.facts, changes, as_of))


def operator_of(conn: Connection, vehicle: str) -> str | None:
    query = sa.select(vehicles.c.operator).where(vehicles.c.id == vehicle)
    operator: str | None = conn.execute(query).scalar_one_or_none()
    return operator


def visit_query() -> sa.Select[Any]:
    """Visits with their operator, the stop's name and its distance to a surgery."""
    return sa.select(
        visits,
        vehicles.c.operator,
        stops.c.name.label("stop_name"),
        stops.c.nearest_surgery_km,
    ).select_from(
        visits.join(vehicles, vehicles.c.id == visits.c.vehicle).outerjoin(
            stops, stops.c.id == visits.c.stop
        )
    )


def visit_row(r: Any) -> VisitRow:
    facts = VisitFacts(
        visit_id=r.id,
        scheduled_arrival=r.scheduled_arrival,
        scheduled_departure=r.scheduled_departure,
        closes_at=r.closes_at,
        on_time_from=timedelta(seconds=r.on_time_from_s),
        on_time_until=timedelta(seconds=r.on_time_until_s),
        timetable_cancelled_reason=r.cancelled_reason,
        detected_arrival=r.detected_arrival,
        detected_departure=r.detected_departure,
        detected_arrival_earliest=r.detected_arrival_earliest,
        detected_arrival_latest=r.detected_arrival_latest,
        opens_at=r.opens_at,
    )
    return VisitRow(
        id=r.id,
        vehicle=r.vehicle,
        operator=r.operator,
        stop=r.stop,
        stop_name=r.stop_name or r.stop,
        day=r.day,
        origin=r.origin,
        changed=r.changed,
        facts=facts,
        eta=r.eta,
        eta_from=r.eta_from,
        eta_distance_m=r.eta_distance_m,
        nearest_surgery_km=r.nearest_surgery_km,
        eta_state=r.eta_state,
        eta_earliest=r.eta_earliest,
        eta_latest=r.eta_latest,
        eta_source=r.eta_source,
    )


def visit(conn: Connection, visit_id: str) -> VisitRow | None:
    row = conn.execute(visit_query().where(visits.c.id == visit_id)).first()
    return visit_row(row) if row is not None else None


def visits_between(
    conn: Connection, first: date, last: date, vehicle: str | None = None
) -> list[VisitRow]:
    c = visits.c
    query = visit_query().where(c.day >= first, c.day <= last)
    if vehicle is not None:
        query = query.where(c.vehicle == vehicle)
    rows = conn.execute(query.order_by(c.day, c.scheduled_arrival, c.vehicle, c.id))
    return [visit_row(r) for r in rows]


def visits_arriving_between(
    conn: Connection, vehicle: str, start: datetime, end: datetime
) -> list[VisitRow]:
    """The vehicle's visits scheduled to arrive in ``[start, end)`` (UTC)."""
    c = visits.c
    query = visit_query().where(
        c.vehicle == vehicle, c.scheduled_arrival >= start, c.scheduled_arrival < end
    )
    return [visit_row(r) for r in conn.execute(query.order_by(c.scheduled_arrival, c.id))]


def record_change(
    conn: Connection,
    visit_id: str,
    decide: Callable[[VisitRow, list[CoordinatorChange]], CoordinatorChange],
) -> CoordinatorChange | None:
    """Append the change ``decide`` returns from the visit and its changes so far, with
    the visit's row locked (PostgreSQL) until the caller's transaction ends, so that two
    coordinators cannot both cancel it; None if there is no such visit. ``decide`` raises
    to refuse, or returns one of the changes so far to record nothing (an idempotent
    repeat). The visit's new state goes to the time-series outbox in the same
    transaction."""
    c = visit_changes.c
    query = visit_query().where(visits.c.id == visit_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(of=visits)
    row = conn.execute(query).first()
    if row is None:
        return None
    so_far = [
        _change_of(r)
        for r in conn.execute(sa.select(visit_changes).where(c.visit_id == visit_id).order_by(c.id))
    ]
    found = visit_row(row)
    change = decide(found, so_far)
    if any(change is earlier for earlier in so_far):
        return change
    conn.execute(
        visit_changes.insert().values(
            visit_id=visit_id,
            kind=change.kind,
            who=change.who,
            at=change.at,
            reason=change.reason,
            arrival=change.arrival,
            departure=change.departure,
            patients_seen=change.patients_seen,
            note=change.note,
            public_message=change.public_message,
            consultations=(
                None if change.consultations is None else consultations_json(change.consultations)
            ),
        )
    )
    if points_wanted(conn):
        emit(conn, [visit_standing(found, [*so_far, change], change.at)])
    return change


def unscheduled(
    conn: Connection, first: date, last: date, vehicle: str | None = None
) -> list[UnscheduledStop]:
    u = unscheduled_stops.c
    query = (
        sa.select(unscheduled_stops, vehicles.c.operator, stops.c.name.label("stop_name"))
        .select_from(
            unscheduled_stops.join(vehicles, vehicles.c.id == u.vehicle).outerjoin(
                stops, stops.c.id == u.stop
            )
        )
        .where(u.day >= first, u.day <= last)
    )
    if vehicle is not None:
        query = query.where(u.vehicle == vehicle)
    return [
        UnscheduledStop(
            r.vehicle,
            r.operator,
            r.day,
            r.stop,
            r.stop_name or r.stop,
            r.arrival,
            r.departure,
            r.arrival_earliest,
            r.arrival_latest,
        )
        for r in conn.execute(query.order_by(u.arrival, u.vehicle))
    ]
