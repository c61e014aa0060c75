"""What coordinators say about a visit, on top of what the GPS detected.

A coordinator confirms a visit (the detected arrival is right), corrects it (the bus
arrived at another time: a time and a reason) or cancels it (a reason), and enters how
many patients the visit saw (an aggregate count, never who). Every change is kept, in
order, with who and when; nothing overwrites the detection. The effective arrival is the
latest correction if any, else the detection; the status follows from it. The patients
seen are those of the latest count.

Pure: the caller passes the stored facts, the changes and the time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from ingest.punctuality.classification import (
    PunctualityThresholds,
    VisitStatus,
    punctuality_of,
)

ChangeKind = Literal["confirm", "correct", "cancel", "attendance"]

# A correction further than this from the visit's scheduled times is a typo (wrong day),
# not a late bus.
MAX_CORRECTION_DISTANCE = timedelta(hours=12)
# Clocks of a coordinator's browser and the server may disagree a little.
FUTURE_TOLERANCE = timedelta(minutes=5)
# A médicobus GP sees a few dozen patients a day at most: a larger count is a typo.
MAX_PATIENTS_SEEN = 200


class ChangeRefusedError(ValueError):
    """A change that cannot be applied; ``conflict`` when it contradicts the visit's state
    (HTTP 409), otherwise it is invalid in itself (HTTP 422)."""

    def __init__(self, message: str, *, conflict: bool) -> None:
        super().__init__(message)
        self.conflict = conflict


@dataclass(frozen=True)
class VisitFacts:
    """A visit as scheduled and as detected, with the band that classes it."""

    visit_id: str
    scheduled_arrival: datetime
    scheduled_departure: datetime
    closes_at: datetime
    on_time_from: timedelta
    on_time_until: timedelta
    timetable_cancelled_reason: str | None = None
    detected_arrival: datetime | None = None
    detected_departure: datetime | None = None


@dataclass(frozen=True)
class CoordinatorChange:
    kind: ChangeKind
    who: str
    at: datetime
    reason: str | None = None
    arrival: datetime | None = None
    departure: datetime | None = None
    patients_seen: int | None = None


@dataclass(frozen=True)
class VisitState:
    status: VisitStatus
    arrival: datetime | None
    departure: datetime | None
    arrival_source: Literal["detected", "corrected"] | None
    delay: timedelta | None
    confirmed_arrival: datetime | None
    confirmed_by: str | None
    confirmed_at: datetime | None
    cancelled_reason: str | None
    cancelled_by: str | None
    patients_seen: int | None = None
    patients_seen_by: str | None = None


def visit_state(
    facts: VisitFacts, changes: Sequence[CoordinatorChange], as_of: datetime
) -> VisitState:
    """The visit as it stands at ``as_of``, changes applied in order."""
    corrected: CoordinatorChange | None = None
    confirmed: tuple[datetime, str, datetime] | None = None
    cancelled: CoordinatorChange | None = None
    attendance: CoordinatorChange | None = None
    for change in changes:
        if change.kind == "correct":
            corrected = change
            assert change.arrival is not None
            confirmed = (change.arrival, change.who, change.at)
        elif change.kind == "confirm":
            assert change.arrival is not None
            confirmed = (change.arrival, change.who, change.at)
        elif change.kind == "attendance":
            attendance = change
        else:
            cancelled = change
    if corrected is not None:
        arrival, departure = corrected.arrival, corrected.departure or facts.detected_departure
        source: Literal["detected", "corrected"] | None = "corrected"
    elif facts.detected_arrival is not None:
        arrival, departure, source = facts.detected_arrival, facts.detected_departure, "detected"
    else:
        arrival, departure, source = None, None, None
    cancelled_reason = facts.timetable_cancelled_reason
    if cancelled_reason is None and cancelled is not None:
        cancelled_reason = cancelled.reason or "cancelled"
    delay = arrival - facts.scheduled_arrival if arrival is not None else None
    status: VisitStatus
    if cancelled_reason:
        status = "cancelled"
    elif delay is not None:
        band = PunctualityThresholds(facts.on_time_from, facts.on_time_until)
        status = punctuality_of(delay, band)
    else:
        status = "pending" if as_of < facts.closes_at else "missed"
    return VisitState(
        status=status,
        arrival=arrival,
        departure=departure,
        arrival_source=source,
        delay=delay,
        confirmed_arrival=confirmed[0] if confirmed else None,
        confirmed_by=confirmed[1] if confirmed else None,
        confirmed_at=confirmed[2] if confirmed else None,
        cancelled_reason=cancelled_reason,
        cancelled_by=cancelled.who if cancelled and not facts.timetable_cancelled_reason else None,
        patients_seen=attendance.patients_seen if attendance else None,
        patients_seen_by=attendance.who if attendance else None,
    )


def _hhmm(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC")


def check_change(
    facts: VisitFacts,
    changes: Sequence[CoordinatorChange],
    change: CoordinatorChange,
) -> CoordinatorChange:
    """``change`` as it will be recorded (a confirmation records the arrival it vouches
    for), or :class:`ChangeRefusedError` saying why not."""
    state = visit_state(facts, changes, change.at)
    reason = (change.reason or "").strip()
    if change.kind in ("correct", "cancel") and not reason:
        raise ChangeRefusedError(f"a {change.kind} needs a reason", conflict=False)
    if state.status == "cancelled":
        raise ChangeRefusedError(
            f"visit {facts.visit_id} is cancelled ({state.cancelled_reason})", conflict=True
        )
    if change.kind == "attendance":
        return _checked_attendance(facts, state, change)
    if change.kind == "cancel":
        if state.arrival is not None:
            raise ChangeRefusedError(
                f"visit {facts.visit_id} took place (arrival {_hhmm(state.arrival)}, "
                f"{state.arrival_source}); correct it instead of cancelling it",
                conflict=True,
            )
        return CoordinatorChange("cancel", change.who, change.at, reason=reason)
    if change.kind == "confirm":
        if state.arrival is None:
            raise ChangeRefusedError(
                f"visit {facts.visit_id} has no arrival to confirm; send a correction with "
                "the time the bus arrived",
                conflict=True,
            )
        return CoordinatorChange(
            "confirm",
            change.who,
            change.at,
            reason=reason or None,
            arrival=state.arrival,
            departure=state.departure,
        )
    arrival, departure = change.arrival, change.departure
    if arrival is None:
        raise ChangeRefusedError("a correction needs the arrival time", conflict=False)
    earliest = facts.scheduled_arrival - MAX_CORRECTION_DISTANCE
    latest = facts.scheduled_departure + MAX_CORRECTION_DISTANCE
    for what, t in (("arrival", arrival), ("departure", departure)):
        if t is None:
            continue
        if not earliest <= t <= latest:
            raise ChangeRefusedError(
                f"{what} {_hhmm(t)} is more than 12 h from the visit's scheduled times "
                f"({_hhmm(facts.scheduled_arrival)} to {_hhmm(facts.scheduled_departure)})",
                conflict=False,
            )
        if t > change.at + FUTURE_TOLERANCE:
            raise ChangeRefusedError(f"{what} {_hhmm(t)} is in the future", conflict=False)
    if departure is not None and departure <= arrival:
        raise ChangeRefusedError(
            f"departure {_hhmm(departure)} is not after arrival {_hhmm(arrival)}", conflict=False
        )
    return CoordinatorChange(
        "correct", change.who, change.at, reason=reason, arrival=arrival, departure=departure
    )


def _checked_attendance(
    facts: VisitFacts, state: VisitState, change: CoordinatorChange
) -> CoordinatorChange:
    count = change.patients_seen
    if count is None:
        raise ChangeRefusedError("patients seen: a count is needed", conflict=False)
    if not 0 <= count <= MAX_PATIENTS_SEEN:
        raise ChangeRefusedError(
            f"patients seen {count} is not between 0 and {MAX_PATIENTS_SEEN}", conflict=False
        )
    if state.arrival is None:
        raise ChangeRefusedError(
            f"visit {facts.visit_id} has no arrival ({state.status}): send a correction with "
            "the time the bus arrived before the patients seen",
            conflict=True,
        )
    note = (change.reason or "").strip() or None
    return CoordinatorChange("attendance", change.who, change.at, reason=note, patients_seen=count)
