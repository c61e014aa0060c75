"""Visits for coordinators: the day's timetable with what the GPS detected, confirmations,
corrections, cancellations and patients seen with their history, ETAs, and punctuality
reports."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import asdict, fields
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, Field

from api.auth import Principal, Role, require
from api.deps import get_store
from api.scope import Day, TypedText, checked_period
from ingest.punctuality.detector import Evidence
from ingest.punctuality.eta import HorizonAccuracy, accuracy_by_horizon
from ingest.punctuality.figures import counted_visits
from ingest.punctuality.kpis import (
    GroupBy,
    PunctualityFigures,
    figures,
    punctuality_figures,
)
from ingest.punctuality.ledger import (
    MAX_PATIENTS_SEEN,
    TIMETABLE_ZONE,
    ChangeRefusedError,
    CoordinatorChange,
    VisitState,
    check_change,
    visit_state,
)
from ingest.punctuality.storage import PunctualityStore, UnscheduledStop, VisitRow
from ingest.reports.configuration import load_configuration
from ingest.resolution import Kilometres, Metres, Minutes, Ratio
from ingest.store import Store
from protocol.clock import Clock, SystemClock
from protocol.models import VEHICLE_ID_PATTERN

router = APIRouter(prefix="/api/v1", tags=["visits"])
Viewer = Annotated[Principal, Depends(require(Role.FLEET_MANAGER, Role.COORDINATOR, Role.ENGINEER))]
Coordinator = Annotated[Principal, Depends(require(Role.COORDINATOR))]
_VEHICLE_ID = re.compile(VEHICLE_ID_PATTERN)
VisitId = Annotated[str, Path(description="e.g. vexin-01:2026-11-23:vesly", max_length=200)]


def _punctuality(store: Annotated[Store, Depends(get_store)]) -> PunctualityStore:
    return PunctualityStore(store)


def _clock(request: Request) -> Clock:
    clock: Clock = getattr(request.app.state, "clock", None) or SystemClock()
    return clock


Db = Annotated[PunctualityStore, Depends(_punctuality)]
StoreDep = Annotated[Store, Depends(get_store)]
ClockDep = Annotated[Clock, Depends(_clock)]


def _minutes(delta: timedelta | None) -> float | None:
    return None if delta is None else round(delta.total_seconds() / 60, 1)


class VisitOut(BaseModel):
    id: str
    vehicle: str
    operator: str
    stop: str
    stop_name: str
    day: date
    origin: str = Field(description="weekly (timetable) or extra (one-off)")
    changed: bool = Field(description="a one-off change moved its times or stop")
    scheduled_arrival: datetime
    scheduled_departure: datetime
    detected_arrival: datetime | None
    detected_departure: datetime | None
    confirmed_arrival: datetime | None
    confirmed_by: str | None
    arrival: datetime | None = Field(description="effective: the correction if any, else detected")
    departure: datetime | None
    arrival_source: Literal["detected", "corrected"] | None
    arrival_estimated: bool = Field(
        description="the detected arrival fell inside a GPS outage: an estimate, with bounds"
    )
    arrival_earliest: datetime | None = Field(description="estimated arrival: not before")
    arrival_latest: datetime | None = Field(description="estimated arrival: not after")
    status: Literal["early", "on_time", "late", "missed", "cancelled", "pending"]
    status_certain: bool = Field(
        description="false: the estimated arrival's bounds allow more than one class; "
        "status is the estimate's"
    )
    possible_statuses: list[Literal["early", "on_time", "late"]] = Field(
        description="every class the arrival's bounds allow"
    )
    delay_min: Minutes | None = Field(description="arrival − scheduled arrival, minutes")
    cancelled_reason: str | None
    cancelled_by: str | None
    public_message: str | None = Field(
        default=None, description="what the public page shows next to the visit"
    )
    eta: datetime | None = Field(description="expected arrival, from the latest position")
    eta_delay_min: Minutes | None
    eta_from: datetime | None = Field(description="time of the position the ETA comes from")
    eta_distance_km: Kilometres | None
    eta_state: (
        Literal["early", "on_time", "late", "waiting_to_leave", "not_confirmed", "doubtful"] | None
    ) = Field(
        default=None,
        description="on_time, early, late (see eta_delay_min), waiting_to_leave (parked, "
        "leaves when its visit ends or in time for this one), not_confirmed (standing off "
        "its round or driving away), doubtful (can no longer arrive within the visit)",
    )
    eta_earliest: datetime | None = Field(default=None, description="interval: no sooner")
    eta_latest: datetime | None = Field(
        default=None, description="interval: no later; null when no bound can be given"
    )
    eta_source: Literal["position", "history", "timetable"] | None = Field(
        default=None,
        description="position (driving time from where the bus is), history (the timetable "
        "as this bus keeps it) or timetable (no prediction does better)",
    )
    patients_seen: int | None = Field(description="the latest count a coordinator entered")
    patients_seen_by: str | None


def _visit_out(row: VisitRow, state: VisitState) -> VisitOut:
    facts = row.facts
    pending = state.status == "pending"
    return VisitOut(
        id=row.id,
        vehicle=row.vehicle,
        operator=row.operator,
        stop=row.stop,
        stop_name=row.stop_name,
        day=row.day,
        origin=row.origin,
        changed=row.changed,
        scheduled_arrival=facts.scheduled_arrival,
        scheduled_departure=facts.scheduled_departure,
        detected_arrival=facts.detected_arrival,
        detected_departure=facts.detected_departure,
        confirmed_arrival=state.confirmed_arrival,
        confirmed_by=state.confirmed_by,
        arrival=state.arrival,
        departure=state.departure,
        arrival_source=state.arrival_source,
        arrival_estimated=state.arrival_estimated,
        arrival_earliest=state.arrival_earliest,
        arrival_latest=state.arrival_latest,
        status=state.status,
        status_certain=state.status_certain,
        possible_statuses=list(state.possible_statuses),
        delay_min=_minutes(state.delay),
        cancelled_reason=state.cancelled_reason,
        cancelled_by=state.cancelled_by,
        public_message=state.public_message,
        eta=row.eta if pending else None,
        eta_delay_min=_minutes(row.eta - facts.scheduled_arrival) if pending and row.eta else None,
        eta_from=row.eta_from if pending else None,
        eta_distance_km=(
            round(row.eta_distance_m / 1000, 2) if pending and row.eta_distance_m else None
        ),
        eta_state=row.eta_state if pending and row.eta else None,
        eta_earliest=row.eta_earliest if pending else None,
        eta_latest=row.eta_latest if pending else None,
        eta_source=row.eta_source if pending and row.eta else None,
        patients_seen=state.patients_seen,
        patients_seen_by=state.patients_seen_by,
    )


class UnscheduledOut(BaseModel):
    vehicle: str
    stop: str
    stop_name: str
    arrival: datetime = Field(description="before the day's start: the stay began earlier")
    departure: datetime | None
    arrival_earliest: datetime | None = Field(description="estimated arrival: not before")
    arrival_latest: datetime | None = Field(description="estimated arrival: not after")


class VisitsOut(BaseModel):
    date: date
    visits: list[VisitOut]
    unscheduled_stops: list[UnscheduledOut] = Field(
        description="stays at a stop that no visit explains (depot, unplanned, far off time)"
    )


def _check_vehicle(db: PunctualityStore, caller: Principal, vehicle: str | None) -> None:
    if vehicle is None:
        return
    # Not a vehicle id at all (a NUL byte, 10 kB of text): no database is asked.
    operator = db.operator_of(vehicle) if _VEHICLE_ID.fullmatch(vehicle) else None
    if operator is None or not caller.sees(operator):
        raise HTTPException(status_code=404, detail=f"unknown vehicle {vehicle!r}")


@router.get("/visits")
def list_visits(
    db: Db,
    clock: ClockDep,
    caller: Viewer,
    day: Annotated[Day, Query(alias="date", description="local date, YYYY-MM-DD")],
    vehicle: str | None = None,
) -> VisitsOut:
    """The visits of a day (scheduled, detected, confirmed, status, delay, ETA) and the
    stops no visit explains, for the caller's operator."""
    _check_vehicle(db, caller, vehicle)
    rows = [r for r in db.visits_between(day, day, vehicle) if caller.sees(r.operator)]
    changes = db.changes(r.id for r in rows)
    now = clock.now()
    out = [_visit_out(r, visit_state(r.facts, changes.get(r.id, []), now)) for r in rows]
    unscheduled: list[UnscheduledStop] = [
        u for u in db.unscheduled(day, day, vehicle) if caller.sees(u.operator)
    ]
    return VisitsOut(
        date=day,
        visits=out,
        unscheduled_stops=[
            UnscheduledOut(
                vehicle=u.vehicle,
                stop=u.stop,
                stop_name=u.stop_name,
                arrival=u.arrival,
                departure=u.departure,
                arrival_earliest=u.arrival_earliest,
                arrival_latest=u.arrival_latest,
            )
            for u in unscheduled
        ],
    )


def _visible(db: PunctualityStore, caller: Principal, visit_id: str) -> VisitRow:
    row = db.visit(visit_id)
    if row is None or not caller.sees(row.operator):
        raise HTTPException(status_code=404, detail=f"no visit {visit_id!r}")
    return row


PUBLIC_MESSAGE_MAX = 280


class ConfirmIn(BaseModel):
    note: TypedText | None = Field(default=None, max_length=500)


class CorrectIn(BaseModel):
    arrival: AwareDatetime = Field(description="when the bus really arrived, with its offset")
    departure: AwareDatetime | None = None
    reason: TypedText = Field(min_length=1, max_length=500)
    force: bool = Field(
        default=False,
        description="record an arrival outside the visit's matching window (refused otherwise)",
    )


class CancelIn(BaseModel):
    reason: TypedText = Field(min_length=1, max_length=500)
    public_message: TypedText | None = Field(
        default=None,
        max_length=PUBLIC_MESSAGE_MAX,
        description="shown on the public page and in the feeds (the reason never is)",
    )


class NoticeIn(BaseModel):
    public_message: TypedText = Field(
        max_length=PUBLIC_MESSAGE_MAX,
        description='what the public sees next to the visit, e.g. a delay; "" withdraws it',
    )


class AttendanceIn(BaseModel):
    patients_seen: int = Field(
        strict=True,
        ge=0,
        le=MAX_PATIENTS_SEEN,
        description="how many patients the visit saw: a count, never who",
    )
    note: TypedText | None = Field(default=None, max_length=500)


def _timetable_zone(store: Store) -> ZoneInfo:
    configuration = load_configuration(store)
    return ZoneInfo(configuration.timezone) if configuration is not None else TIMETABLE_ZONE


def _apply(
    db: PunctualityStore,
    caller: Principal,
    visit_id: str,
    change: CoordinatorChange,
    zone: ZoneInfo,
) -> VisitOut:
    _visible(db, caller, visit_id)

    def decide(row: VisitRow, so_far: list[CoordinatorChange]) -> CoordinatorChange:
        return check_change(row.facts, so_far, change, zone)

    try:
        recorded = db.record_change(visit_id, decide)
    except ChangeRefusedError as exc:
        raise HTTPException(status_code=409 if exc.conflict else 422, detail=str(exc)) from None
    if recorded is None:
        raise HTTPException(status_code=404, detail=f"no visit {visit_id!r}")
    row = _visible(db, caller, visit_id)
    state = visit_state(row.facts, db.changes([visit_id]).get(visit_id, []), change.at)
    return _visit_out(row, state)


@router.post("/visits/{visit_id}/confirm")
def confirm_visit(
    *,
    visit_id: VisitId,
    db: Db,
    store: StoreDep,
    clock: ClockDep,
    caller: Coordinator,
    body: ConfirmIn | None = None,
) -> VisitOut:
    """The detected (or corrected) arrival is right. Idempotent: confirming again an
    arrival already confirmed records nothing and answers the visit with the existing
    confirmation (who, when); a changed arrival is confirmed anew."""
    note = body.note if body else None
    change = CoordinatorChange("confirm", caller.name, clock.now(), note=note)
    return _apply(db, caller, visit_id, change, _timetable_zone(store))


@router.post("/visits/{visit_id}/correct")
def correct_visit(
    *,
    visit_id: VisitId,
    body: CorrectIn,
    db: Db,
    store: StoreDep,
    clock: ClockDep,
    caller: Coordinator,
) -> VisitOut:
    """The bus arrived (and left) at other times than detected, or was not detected. An
    arrival outside the visit's matching window is refused (422, with the window) unless
    ``force`` is true."""
    change = CoordinatorChange(
        "correct",
        caller.name,
        clock.now(),
        body.reason,
        body.arrival,
        body.departure,
        force=body.force,
    )
    return _apply(db, caller, visit_id, change, _timetable_zone(store))


@router.post("/visits/{visit_id}/cancel")
def cancel_visit(
    *,
    visit_id: VisitId,
    body: CancelIn,
    db: Db,
    store: StoreDep,
    clock: ClockDep,
    caller: Coordinator,
) -> VisitOut:
    """The visit will not (or did not) take place."""
    change = CoordinatorChange(
        "cancel", caller.name, clock.now(), body.reason, public_message=body.public_message
    )
    return _apply(db, caller, visit_id, change, _timetable_zone(store))


@router.post("/visits/{visit_id}/notice")
def public_notice(
    *,
    visit_id: VisitId,
    body: NoticeIn,
    db: Db,
    store: StoreDep,
    clock: ClockDep,
    caller: Coordinator,
) -> VisitOut:
    """Show the public a message next to the visit (a delay, a change of place), or
    withdraw it with an empty one; kept in the visit's history."""
    change = CoordinatorChange(
        "notice", caller.name, clock.now(), public_message=body.public_message
    )
    return _apply(db, caller, visit_id, change, _timetable_zone(store))


@router.post("/visits/{visit_id}/attendance")
def record_attendance(
    *,
    visit_id: VisitId,
    body: AttendanceIn,
    db: Db,
    store: StoreDep,
    clock: ClockDep,
    caller: Coordinator,
) -> VisitOut:
    """How many patients the visit saw; a later count replaces it, both are kept. The visit
    must have an arrival (detected or corrected) and not be cancelled."""
    change = CoordinatorChange(
        "attendance",
        caller.name,
        clock.now(),
        patients_seen=body.patients_seen,
        note=body.note,
    )
    return _apply(db, caller, visit_id, change, _timetable_zone(store))


class EvidenceOut(BaseModel):
    fixes: int
    max_distance_m: Metres
    first_fix: datetime
    last_fix: datetime


class DetectionOut(BaseModel):
    arrival: datetime | None
    arrival_estimated: bool
    arrival_earliest: datetime | None
    arrival_latest: datetime | None
    departure: datetime | None
    arrival_evidence: EvidenceOut | None
    departure_evidence: EvidenceOut | None


class ChangeOut(BaseModel):
    kind: Literal["confirm", "correct", "cancel", "attendance", "notice"]
    who: str
    at: datetime
    reason: str | None = Field(description="why a correction or cancellation was made")
    note: str | None = Field(description="a confirmation's or a count's note")
    arrival: datetime | None
    departure: datetime | None
    patients_seen: int | None
    public_message: str | None = Field(
        default=None, description='what the public was shown ("": withdrawn)'
    )


class HistoryOut(BaseModel):
    visit: VisitOut
    detected: DetectionOut
    changes: list[ChangeOut]


def _evidence(evidence: Evidence | None) -> EvidenceOut | None:
    return EvidenceOut(**asdict(evidence)) if evidence is not None else None


@router.get("/visits/{visit_id}/history")
def visit_history(visit_id: VisitId, db: Db, clock: ClockDep, caller: Viewer) -> HistoryOut:
    """What was detected (with the evidence) and every change, oldest first, with who and
    when."""
    row = _visible(db, caller, visit_id)
    changes = db.changes([visit_id]).get(visit_id, [])
    facts = row.facts
    arrival_ev = (
        db.evidence(row.vehicle, "arrival", facts.detected_arrival)
        if facts.detected_arrival
        else None
    )
    departure_ev = (
        db.evidence(row.vehicle, "departure", facts.detected_departure)
        if facts.detected_departure
        else None
    )
    return HistoryOut(
        visit=_visit_out(row, visit_state(facts, changes, clock.now())),
        detected=DetectionOut(
            arrival=facts.detected_arrival,
            arrival_estimated=facts.detected_arrival_earliest is not None,
            arrival_earliest=facts.detected_arrival_earliest,
            arrival_latest=facts.detected_arrival_latest,
            departure=facts.detected_departure,
            arrival_evidence=_evidence(arrival_ev),
            departure_evidence=_evidence(departure_ev),
        ),
        changes=[
            ChangeOut(
                kind=c.kind,
                who=c.who,
                at=c.at,
                reason=c.reason,
                note=c.note,
                arrival=c.arrival,
                departure=c.departure,
                patients_seen=c.patients_seen,
                public_message=c.public_message,
            )
            for c in changes
        ],
    )


class FiguresOut(BaseModel):
    group: str
    visits: int
    held: int
    early: int
    on_time: int
    late: int
    missed: int
    cancelled: int
    pending: int
    on_time_rate: Ratio | None = Field(description="on time / (held + missed)")
    mean_delay_min: Minutes | None
    p90_delay_min: Minutes | None


class ReportOut(BaseModel):
    first: date = Field(serialization_alias="from")
    last: date = Field(serialization_alias="to")
    group_by: str
    groups: list[FiguresOut]
    total: FiguresOut


def _figures_out(f: PunctualityFigures) -> FiguresOut:
    data = asdict(f)
    for key in ("on_time_rate", "mean_delay_min", "p90_delay_min"):
        if data[key] is not None:
            data[key] = round(data[key], 3 if key == "on_time_rate" else 1)
    return FiguresOut(**data)


@router.get("/reports/punctuality", response_model=ReportOut, response_model_by_alias=True)
def punctuality_report(
    *,
    request: Request,
    db: Db,
    clock: ClockDep,
    caller: Viewer,
    first: Annotated[Day, Query(alias="from", description="first local date")],
    last: Annotated[Day, Query(alias="to", description="last local date, included")],
    group_by: GroupBy = "vehicle",
    vehicle: str | None = None,
    format: Annotated[
        Literal["json", "csv"] | None, Query(description="or send Accept: text/csv")
    ] = None,
) -> Any:
    """On-time rate, mean and 90th-percentile delay, missed and cancelled visits, grouped
    by vehicle, stop, weekday, day, ISO week or month, in JSON or CSV."""
    checked_period(first, last)
    _check_vehicle(db, caller, vehicle)
    rows = [r for r in db.visits_between(first, last, vehicle) if caller.sees(r.operator)]
    # The visits every report counts (due ones), by the one rule the reports share.
    now = clock.now()
    results = [v.result for v in counted_visits(rows, db.changes(r.id for r in rows), now)]
    groups = [_figures_out(f) for f in punctuality_figures(results, group_by)]
    total = _figures_out(figures("all", results))
    wants_csv = format == "csv" or (
        format is None and "text/csv" in request.headers.get("accept", "")
    )
    if wants_csv:
        out = io.StringIO()
        names = [f.name for f in fields(PunctualityFigures)]
        writer = csv.DictWriter(out, fieldnames=names, lineterminator="\r\n")
        writer.writeheader()
        for g in [*groups, total]:
            writer.writerow({k: "" if v is None else v for k, v in g.model_dump().items()})
        filename = f"punctuality-{first}-{last}-by-{group_by}.csv"
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return ReportOut(first=first, last=last, group_by=group_by, groups=groups, total=total)


class HorizonOut(BaseModel):
    bucket: str = Field(description="minutes from the prediction to the arrival")
    predictions: int
    eta_p50_s: float | None = Field(description="median absolute error of the ETA, seconds")
    eta_p90_s: float | None
    timetable_p50_s: float | None = Field(description="the same for the timetable")
    timetable_p90_s: float | None


class EtaAccuracyOut(BaseModel):
    first: date = Field(serialization_alias="from")
    last: date = Field(serialization_alias="to")
    rank: int | None = Field(description="1 = the next visit; null = every rank")
    horizons: list[HorizonOut]


def _seconds(value: float | None) -> float | None:
    return None if value is None else float(round(value))


def _horizon_out(a: HorizonAccuracy) -> HorizonOut:
    return HorizonOut(
        bucket=a.bucket,
        predictions=a.predictions,
        eta_p50_s=_seconds(a.eta_p50_s),
        eta_p90_s=_seconds(a.eta_p90_s),
        timetable_p50_s=_seconds(a.timetable_p50_s),
        timetable_p90_s=_seconds(a.timetable_p90_s),
    )


@router.get(
    "/reports/punctuality/eta-accuracy",
    response_model=EtaAccuracyOut,
    response_model_by_alias=True,
)
def eta_accuracy_report(
    *,
    db: Db,
    caller: Viewer,
    first: Annotated[Day, Query(alias="from", description="first local date")],
    last: Annotated[Day, Query(alias="to", description="last local date, included")],
    vehicle: str | None = None,
    rank: Annotated[int | None, Query(ge=1, le=20)] = None,
) -> Any:
    """How far the published ETAs were from the arrivals, by horizon (0-5, 5-15, 15-30,
    30-60, > 60 min before the arrival), beside the timetable's error at the same
    instants: median and 90th percentile, in seconds."""
    checked_period(first, last)
    _check_vehicle(db, caller, vehicle)
    outcomes = [
        o
        for operator, o in db.prediction_outcomes_of_days(first, last, vehicle)
        if caller.sees(operator)
    ]
    horizons = [_horizon_out(a) for a in accuracy_by_horizon(outcomes, rank)]
    return EtaAccuracyOut(first=first, last=last, rank=rank, horizons=horizons)
