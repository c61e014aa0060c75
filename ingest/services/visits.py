"""Visits for coordinators and fleet managers: a day's visits, a visit's history, the
commands that change a visit, and the punctuality reports over the viewer's visits."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection

from ingest.follow_up.consultations import (
    ConsultationsRefusedError,
    FollowUpSettings,
    check_consultations,
)
from ingest.punctuality import storage, visit_rows
from ingest.punctuality.detector import Evidence
from ingest.punctuality.kpis import GroupBy
from ingest.punctuality.ledger import (
    TIMETABLE_ZONE,
    ChangeRefusedError,
    CoordinatorChange,
    VisitState,
    check_change,
    visit_state,
)
from ingest.punctuality.visit_rows import UnscheduledStop, VisitRow
from ingest.reports.configuration import load_configuration
from ingest.reports.punctuality import (
    EtaAccuracyOut,
    PunctualityReportOut,
    eta_accuracy_report,
    punctuality_report,
)
from ingest.services import audit
from ingest.services.common import (
    ConflictError,
    NotFoundError,
    RefusedError,
    Viewer,
    reading,
    unit_of_work,
)
from ingest.store import Store
from protocol.models import VEHICLE_ID_PATTERN

_VEHICLE_ID = re.compile(VEHICLE_ID_PATTERN)


@dataclass(frozen=True)
class VisitNow:
    """A visit and where it stands at a given instant."""

    row: VisitRow
    state: VisitState


@dataclass(frozen=True)
class DayOfVisits:
    visits: list[VisitNow]
    unscheduled: list[UnscheduledStop]


@dataclass(frozen=True)
class VisitHistory:
    visit: VisitNow
    changes: list[CoordinatorChange]
    arrival_evidence: Evidence | None
    departure_evidence: Evidence | None


def _check_vehicle(conn: Connection, viewer: Viewer, vehicle: str | None) -> None:
    if vehicle is None:
        return
    # Not a vehicle id at all (a NUL byte, 10 kB of text): the database is not asked.
    operator = visit_rows.operator_of(conn, vehicle) if _VEHICLE_ID.fullmatch(vehicle) else None
    if operator is None or not viewer.sees(operator):
        raise NotFoundError(f"unknown vehicle {vehicle!r}")


def _visible(conn: Connection, viewer: Viewer, visit_id: str) -> VisitRow:
    row = visit_rows.visit(conn, visit_id)
    if row is None or not viewer.sees(row.operator):
        raise NotFoundError(f"no visit {visit_id!r}")
    return row


def _seen(rows: Sequence[VisitRow], viewer: Viewer) -> list[VisitRow]:
    return [r for r in rows if viewer.sees(r.operator)]


def visits_of_day(
    store: Store, viewer: Viewer, day: date, vehicle: str | None, now: datetime
) -> DayOfVisits:
    """The viewer's visits of a local day, as they stand at ``now``, and the stays at a
    stop that no visit explains."""
    with reading(store) as conn:
        _check_vehicle(conn, viewer, vehicle)
        rows = _seen(visit_rows.visits_between(conn, day, day, vehicle), viewer)
        changes = visit_rows.changes(conn, (r.id for r in rows))
        unscheduled = [
            u for u in visit_rows.unscheduled(conn, day, day, vehicle) if viewer.sees(u.operator)
        ]
    return DayOfVisits(
        visits=[VisitNow(r, visit_state(r.facts, changes.get(r.id, []), now)) for r in rows],
        unscheduled=unscheduled,
    )


def change_visit(
    store: Store, viewer: Viewer, visit_id: str, change: CoordinatorChange
) -> VisitNow:
    """Record a coordinator's change (confirm, correct, cancel, notice, attendance) if the
    visit's facts and its changes so far allow it: in one transaction with the visit's row
    locked, so two coordinators cannot both cancel it. RefusedError (a reason) or ConflictError
    (it contradicts what is recorded) otherwise; a repeated confirmation records
    nothing."""
    configuration = load_configuration(store)
    zone = ZoneInfo(configuration.timezone) if configuration is not None else TIMETABLE_ZONE

    appended: list[CoordinatorChange] = []

    def decide(row: VisitRow, so_far: list[CoordinatorChange]) -> CoordinatorChange:
        if not viewer.sees(row.operator):
            raise NotFoundError(f"no visit {visit_id!r}")
        if change.consultations is not None:
            settings = (
                configuration.follow_up_of(row.operator)
                if configuration is not None
                else FollowUpSettings()
            )
            try:
                check_consultations(change.consultations, change.patients_seen or 0, settings)
            except ConsultationsRefusedError as exc:
                raise RefusedError(str(exc)) from None
        decided = check_change(row.facts, so_far, change, zone)
        if not any(decided is earlier for earlier in so_far):
            appended.append(decided)
        return decided

    try:
        with unit_of_work(store) as conn:
            recorded = visit_rows.record_change(conn, visit_id, decide)
            if recorded is None:
                raise NotFoundError(f"no visit {visit_id!r}")
            for made in appended:
                audit.record(
                    conn,
                    viewer,
                    f"visit.{made.kind}",
                    visit_id,
                    made.at,
                    reason=made.reason,
                    note=made.note,
                    arrival=made.arrival,
                    departure=made.departure,
                    patients_seen=made.patients_seen,
                    public_message=made.public_message,
                    force=made.force or None,
                )
            row = _visible(conn, viewer, visit_id)
            changes = visit_rows.changes(conn, [visit_id]).get(visit_id, [])
    except ChangeRefusedError as exc:
        raise (ConflictError if exc.conflict else RefusedError)(str(exc)) from None
    return VisitNow(row, visit_state(row.facts, changes, change.at))


def visit_history(store: Store, viewer: Viewer, visit_id: str, now: datetime) -> VisitHistory:
    """What was detected (with the evidence) and every change, oldest first."""
    with reading(store) as conn:
        row = _visible(conn, viewer, visit_id)
        changes = visit_rows.changes(conn, [visit_id]).get(visit_id, [])
        facts = row.facts
        arrival = (
            storage.evidence(conn, row.vehicle, "arrival", facts.detected_arrival)
            if facts.detected_arrival
            else None
        )
        departure = (
            storage.evidence(conn, row.vehicle, "departure", facts.detected_departure)
            if facts.detected_departure
            else None
        )
    return VisitHistory(
        visit=VisitNow(row, visit_state(facts, changes, now)),
        changes=changes,
        arrival_evidence=arrival,
        departure_evidence=departure,
    )


def punctuality(
    store: Store,
    viewer: Viewer,
    *,
    first: date,
    last: date,
    group_by: GroupBy,
    vehicle: str | None,
    now: datetime,
) -> PunctualityReportOut:
    """The punctuality report over the viewer's visits of ``first`` to ``last``."""
    with reading(store) as conn:
        _check_vehicle(conn, viewer, vehicle)
        rows = _seen(visit_rows.visits_between(conn, first, last, vehicle), viewer)
        changes = visit_rows.changes(conn, (r.id for r in rows))
    return punctuality_report(rows, changes, now, first=first, last=last, group_by=group_by)


def eta_accuracy(
    store: Store,
    viewer: Viewer,
    *,
    first: date,
    last: date,
    vehicle: str | None,
    rank: int | None,
) -> EtaAccuracyOut:
    """The ETA accuracy report over the viewer's visits of ``first`` to ``last``."""
    with reading(store) as conn:
        _check_vehicle(conn, viewer, vehicle)
        outcomes = [
            o
            for operator, o in storage.prediction_outcomes_of_days(conn, first, last, vehicle)
            if viewer.sees(operator)
        ]
    return eta_accuracy_report(outcomes, first=first, last=last, rank=rank)
