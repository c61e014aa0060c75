"""Visits for coordinators: the day's timetable with what the GPS detected, confirmations,
corrections, cancellations and patients seen with their history, ETAs, and punctuality
reports."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from api.auth import Principal, Role, require
from api.deps import ClockDep, get_store
from api.scope import Day, TypedText, checked_period
from ingest.follow_up.consultations import ID_PATTERN, Consultations
from ingest.punctuality.detector import Evidence
from ingest.punctuality.kpis import GroupBy
from ingest.punctuality.ledger import MAX_PATIENTS_SEEN, CoordinatorChange
from ingest.reports.punctuality import EtaAccuracyOut, PunctualityReportOut, punctuality_csv
from ingest.resolution import Kilometres, Metres, Minutes
from ingest.services import visits as service
from ingest.services.visits import VisitNow
from ingest.store import Store

router = APIRouter(prefix="/api/v1", tags=["visits"])
Viewer = Annotated[Principal, Depends(require(Role.FLEET_MANAGER, Role.COORDINATOR, Role.ENGINEER))]
Coordinator = Annotated[Principal, Depends(require(Role.COORDINATOR))]
VisitId = Annotated[str, Path(description="e.g. vexin-01:2026-11-23:vesly", max_length=200)]


StoreDep = Annotated[Store, Depends(get_store)]


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
    consultations: ConsultationsBody | None = Field(
        default=None, description="with the latest count: by profile, referrals, day, team"
    )


def _visit_out(visit: VisitNow) -> VisitOut:
    row, state = visit.row, visit.state
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
        consultations=ConsultationsBody.of(state.consultations),
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


@router.get("/visits")
def list_visits(
    store: StoreDep,
    clock: ClockDep,
    caller: Viewer,
    day: Annotated[Day, Query(alias="date", description="local date, YYYY-MM-DD")],
    vehicle: str | None = None,
) -> VisitsOut:
    """The visits of a day (scheduled, detected, confirmed, status, delay, ETA) and the
    stops no visit explains, for the caller's operator."""
    found = service.visits_of_day(store, caller, day, vehicle, clock.now())
    return VisitsOut(
        date=day,
        visits=[_visit_out(v) for v in found.visits],
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
            for u in found.unscheduled
        ],
    )


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


Count = Annotated[int, Field(strict=True, ge=0, le=MAX_PATIENTS_SEEN)]
FollowUpId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]


class ConsultationsBody(BaseModel):
    """The visit's consultations as counts: by the operator's patient profiles, the SAS's
    referrals, the patients directed to the CPAM; the kind of day and the team's ids."""

    model_config = ConfigDict(extra="forbid")

    by_profile: dict[FollowUpId, Count] = Field(
        default_factory=dict,
        max_length=20,
        description="profile id → consultations; they add up to patients_seen",
    )
    sas_referred: Count = Field(default=0, description="consultations the SAS asked for")
    cpam_directed: Count = Field(default=0, description="patients directed to the CPAM")
    offering: FollowUpId | None = Field(
        default=None, description='"general" (general practice) or a speciality id'
    )
    professionals: list[FollowUpId] = Field(
        default_factory=list, max_length=10, description="ids of the professionals on board"
    )

    def domain(self) -> Consultations:
        return Consultations(
            by_profile=dict(self.by_profile),
            sas_referred=self.sas_referred,
            cpam_directed=self.cpam_directed,
            offering=self.offering,
            professionals=tuple(self.professionals),
        )

    @classmethod
    def of(cls, c: Consultations | None) -> ConsultationsBody | None:
        if c is None:
            return None
        return cls(
            by_profile=dict(c.by_profile),
            sas_referred=c.sas_referred,
            cpam_directed=c.cpam_directed,
            offering=c.offering,
            professionals=list(c.professionals),
        )


class AttendanceIn(BaseModel):
    patients_seen: int = Field(
        strict=True,
        ge=0,
        le=MAX_PATIENTS_SEEN,
        description="how many patients the visit saw: a count, never who",
    )
    note: TypedText | None = Field(default=None, max_length=500)
    consultations: ConsultationsBody | None = None


def _apply(store: Store, caller: Principal, visit_id: str, change: CoordinatorChange) -> VisitOut:
    return _visit_out(service.change_visit(store, caller, visit_id, change))


@router.post("/visits/{visit_id}/confirm")
def confirm_visit(
    *,
    visit_id: VisitId,
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
    return _apply(store, caller, visit_id, change)


@router.post("/visits/{visit_id}/correct")
def correct_visit(
    *,
    visit_id: VisitId,
    body: CorrectIn,
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
    return _apply(store, caller, visit_id, change)


@router.post("/visits/{visit_id}/cancel")
def cancel_visit(
    *,
    visit_id: VisitId,
    body: CancelIn,
    store: StoreDep,
    clock: ClockDep,
    caller: Coordinator,
) -> VisitOut:
    """The visit will not (or did not) take place."""
    change = CoordinatorChange(
        "cancel", caller.name, clock.now(), body.reason, public_message=body.public_message
    )
    return _apply(store, caller, visit_id, change)


@router.post("/visits/{visit_id}/notice")
def public_notice(
    *,
    visit_id: VisitId,
    body: NoticeIn,
    store: StoreDep,
    clock: ClockDep,
    caller: Coordinator,
) -> VisitOut:
    """Show the public a message next to the visit (a delay, a change of place), or
    withdraw it with an empty one; kept in the visit's history."""
    change = CoordinatorChange(
        "notice", caller.name, clock.now(), public_message=body.public_message
    )
    return _apply(store, caller, visit_id, change)


@router.post("/visits/{visit_id}/attendance")
def record_attendance(
    *,
    visit_id: VisitId,
    body: AttendanceIn,
    store: StoreDep,
    clock: ClockDep,
    caller: Coordinator,
) -> VisitOut:
    """How many patients the visit saw, and optionally its consultations by the operator's
    patient profiles (adding up to it), the SAS's referrals, the patients directed to the
    CPAM, the kind of day and the team; a later count replaces it, both are kept. The visit
    must have an arrival (detected or corrected) and not be cancelled. Counts only: never
    who the patients were."""
    change = CoordinatorChange(
        "attendance",
        caller.name,
        clock.now(),
        patients_seen=body.patients_seen,
        note=body.note,
        consultations=body.consultations.domain() if body.consultations else None,
    )
    return _apply(store, caller, visit_id, change)


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
    consultations: ConsultationsBody | None = None


class HistoryOut(BaseModel):
    visit: VisitOut
    detected: DetectionOut
    changes: list[ChangeOut]


def _evidence(evidence: Evidence | None) -> EvidenceOut | None:
    return EvidenceOut(**asdict(evidence)) if evidence is not None else None


@router.get("/visits/{visit_id}/history")
def visit_history(
    visit_id: VisitId, store: StoreDep, clock: ClockDep, caller: Viewer
) -> HistoryOut:
    """What was detected (with the evidence) and every change, oldest first, with who and
    when."""
    found = service.visit_history(store, caller, visit_id, clock.now())
    facts = found.visit.row.facts
    return HistoryOut(
        visit=_visit_out(found.visit),
        detected=DetectionOut(
            arrival=facts.detected_arrival,
            arrival_estimated=facts.detected_arrival_earliest is not None,
            arrival_earliest=facts.detected_arrival_earliest,
            arrival_latest=facts.detected_arrival_latest,
            departure=facts.detected_departure,
            arrival_evidence=_evidence(found.arrival_evidence),
            departure_evidence=_evidence(found.departure_evidence),
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
                consultations=ConsultationsBody.of(c.consultations),
            )
            for c in found.changes
        ],
    )


@router.get(
    "/reports/punctuality", response_model=PunctualityReportOut, response_model_by_alias=True
)
def punctuality_report(
    *,
    request: Request,
    store: StoreDep,
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
    report = service.punctuality(
        store,
        caller,
        first=first,
        last=last,
        group_by=group_by,
        vehicle=vehicle,
        now=clock.now(),
    )
    wants_csv = format == "csv" or (
        format is None and "text/csv" in request.headers.get("accept", "")
    )
    if wants_csv:
        filename = f"punctuality-{first}-{last}-by-{group_by}.csv"
        return Response(
            punctuality_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return report


@router.get(
    "/reports/punctuality/eta-accuracy",
    response_model=EtaAccuracyOut,
    response_model_by_alias=True,
)
def eta_accuracy_report(
    *,
    store: StoreDep,
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
    return service.eta_accuracy(store, caller, first=first, last=last, vehicle=vehicle, rank=rank)
