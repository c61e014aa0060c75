"""What coordinators say about a visit, on top of what the GPS detected.

A coordinator confirms a visit (the detected arrival is right), corrects it (the bus
arrived at another time: a time and a reason) or cancels it (a reason), and enters how
many patients the visit saw (an aggregate count, never who). Every change is kept, in
order, with who and when; nothing overwrites the detection. The effective arrival is the
latest correction if any, else the detection; the status follows from it. The patients
seen are those of the latest count.

A confirmation and a count may carry a note (kept apart from the reason a correction or a
cancellation needs). Confirming is idempotent: confirming again an arrival already
confirmed records nothing and answers the existing confirmation (its who, when and note);
an arrival that changed since (a correction, a new detection) is confirmed anew.

A correction whose arrival falls outside the visit's matching window (the window in which
a detected arrival would have counted for it) is most likely a mistyped time or offset
(``+05:00`` for ``+01:00``): it is refused with the reason unless the coordinator insists
(``force``). Nothing further than 12 h from the visit's times is ever accepted.

A detected arrival that fell inside a GPS outage is an estimate with bounds: its class is
certain when both bounds give the same class; otherwise the status is the estimate's
class and ``possible_statuses`` lists every class the bounds allow.

Messages give times in the timetable's local time (Europe/Paris), saying so.

Pure: the caller passes the stored facts, the changes and the time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from ingest.follow_up.consultations import Consultations
from ingest.punctuality.classification import (
    Punctuality,
    PunctualityThresholds,
    VisitStatus,
    punctuality_of,
)

# The timetable's zone when the caller does not say (the itinerary's default).
TIMETABLE_ZONE = ZoneInfo("Europe/Paris")
# Where a visit records no matching window's start (rows from before it was kept).
DEFAULT_MATCH_BEFORE = timedelta(hours=2)

ChangeKind = Literal["confirm", "correct", "cancel", "attendance", "notice"]

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
    # The detected arrival fell in a GPS outage: it is an estimate within these bounds.
    detected_arrival_earliest: datetime | None = None
    detected_arrival_latest: datetime | None = None
    # Start of the matching window (a detected arrival from then on counts for the visit).
    opens_at: datetime | None = None

    @property
    def window_opens(self) -> datetime:
        return self.opens_at or self.scheduled_arrival - DEFAULT_MATCH_BEFORE


@dataclass(frozen=True)
class CoordinatorChange:
    kind: ChangeKind
    who: str
    at: datetime
    reason: str | None = None
    arrival: datetime | None = None
    departure: datetime | None = None
    patients_seen: int | None = None
    note: str | None = None
    force: bool = False
    # What the public sees next to the visit (a cancellation's or a delay's message);
    # "" withdraws the one shown. Never the internal ``reason``.
    public_message: str | None = None
    # With an attendance: the consultations by profile, the kind of day and the team.
    consultations: Consultations | None = None


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
    # A detected arrival estimated inside a GPS outage: its bounds (None when observed).
    arrival_earliest: datetime | None = None
    arrival_latest: datetime | None = None
    possible_statuses: tuple[Punctuality, ...] = ()
    public_message: str | None = None
    consultations: Consultations | None = None

    @property
    def arrival_estimated(self) -> bool:
        return self.arrival_earliest is not None

    @property
    def status_certain(self) -> bool:
        return len(self.possible_statuses) <= 1


_CLASSES: tuple[Punctuality, ...] = ("early", "on_time", "late")


def _possible(
    earliest: datetime, latest: datetime, facts: VisitFacts, band: PunctualityThresholds
) -> tuple[Punctuality, ...]:
    """The classes of every arrival in [earliest, latest]: the classes are intervals of
    delay in order, so those between the bounds' classes."""
    first = _CLASSES.index(punctuality_of(earliest - facts.scheduled_arrival, band))
    last = _CLASSES.index(punctuality_of(latest - facts.scheduled_arrival, band))
    return _CLASSES[first : last + 1]


def visit_state(
    facts: VisitFacts, changes: Sequence[CoordinatorChange], as_of: datetime
) -> VisitState:
    """The visit as it stands at ``as_of``, changes applied in order."""
    corrected: CoordinatorChange | None = None
    confirmed: tuple[datetime, str, datetime] | None = None
    cancelled: CoordinatorChange | None = None
    attendance: CoordinatorChange | None = None
    public_message: str | None = None
    for change in changes:
        if change.public_message is not None:
            public_message = change.public_message or None
        if change.kind == "notice":
            continue
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
    earliest = latest = None
    if source == "detected" and facts.detected_arrival_earliest is not None:
        earliest = facts.detected_arrival_earliest
        latest = facts.detected_arrival_latest or facts.detected_arrival
    possible: tuple[Punctuality, ...] = ()
    status: VisitStatus
    if cancelled_reason:
        status = "cancelled"
    elif delay is not None:
        band = PunctualityThresholds(facts.on_time_from, facts.on_time_until)
        status = punctuality_of(delay, band)
        possible = (status,)
        if earliest is not None and latest is not None:
            possible = _possible(earliest, latest, facts, band)
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
        consultations=attendance.consultations if attendance else None,
        arrival_earliest=earliest,
        arrival_latest=latest,
        possible_statuses=possible,
        public_message=public_message,
    )


def local_time(t: datetime, zone: ZoneInfo = TIMETABLE_ZONE) -> str:
    """``t`` as the timetable reads it: local date and time, the zone and its offset."""
    local = t.astimezone(zone)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} {zone.key} (UTC{offset[:3]}:{offset[3:]})"


def check_change(
    facts: VisitFacts,
    changes: Sequence[CoordinatorChange],
    change: CoordinatorChange,
    zone: ZoneInfo = TIMETABLE_ZONE,
) -> CoordinatorChange:
    """``change`` as it will be recorded (a confirmation records the arrival it vouches
    for; confirming an arrival already confirmed answers the existing confirmation, one of
    ``changes``, to be recorded again by no one), or :class:`ChangeRefusedError` saying why
    not. Times in messages are local to ``zone``."""

    def when(t: datetime) -> str:
        return local_time(t, zone)

    state = visit_state(facts, changes, change.at)
    reason = (change.reason or "").strip()
    note = (change.note or "").strip() or None
    if change.kind == "notice":
        # A message to the public, also on a cancelled visit; "" withdraws it.
        message = (change.public_message or "").strip()
        if not message and state.public_message is None:
            raise ChangeRefusedError("there is no public message to withdraw", conflict=True)
        return CoordinatorChange("notice", change.who, change.at, public_message=message)
    if change.kind in ("correct", "cancel") and not reason:
        raise ChangeRefusedError(f"a {change.kind} needs a reason", conflict=False)
    if state.status == "cancelled":
        raise ChangeRefusedError(
            f"visit {facts.visit_id} is cancelled ({state.cancelled_reason})", conflict=True
        )
    if change.kind == "attendance":
        return _checked_attendance(facts, state, change, note)
    if change.kind == "cancel":
        if state.arrival is not None:
            raise ChangeRefusedError(
                f"visit {facts.visit_id} took place (arrival {when(state.arrival)}, "
                f"{state.arrival_source}); correct it instead of cancelling it",
                conflict=True,
            )
        shown = (change.public_message or "").strip() or None
        return CoordinatorChange(
            "cancel", change.who, change.at, reason=reason, public_message=shown
        )
    if change.kind == "confirm":
        if state.arrival is None:
            raise ChangeRefusedError(
                f"visit {facts.visit_id} has no arrival to confirm; send a correction with "
                "the time the bus arrived",
                conflict=True,
            )
        for earlier in reversed(changes):
            if earlier.kind in ("confirm", "correct"):
                if earlier.kind == "confirm" and earlier.arrival == state.arrival:
                    return earlier
                break
        return CoordinatorChange(
            "confirm",
            change.who,
            change.at,
            arrival=state.arrival,
            departure=state.departure,
            note=note,
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
                f"{what} {when(t)} is more than 12 h from the visit's scheduled times "
                f"({when(facts.scheduled_arrival)} to {when(facts.scheduled_departure)})",
                conflict=False,
            )
        if t > change.at + FUTURE_TOLERANCE:
            raise ChangeRefusedError(f"{what} {when(t)} is in the future", conflict=False)
    if departure is not None and departure <= arrival:
        raise ChangeRefusedError(
            f"departure {when(departure)} is not after arrival {when(arrival)}", conflict=False
        )
    opens, closes = facts.window_opens, facts.closes_at
    if not change.force and not opens <= arrival <= closes:
        raise ChangeRefusedError(
            f"arrival {when(arrival)} is outside the visit's matching window "
            f"({when(opens)} to {when(closes)}, scheduled {when(facts.scheduled_arrival)}): "
            "check the time and its UTC offset, or send force: true to record it anyway",
            conflict=False,
        )
    return CoordinatorChange(
        "correct", change.who, change.at, reason=reason, arrival=arrival, departure=departure
    )


def _checked_attendance(
    facts: VisitFacts, state: VisitState, change: CoordinatorChange, note: str | None
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
    return CoordinatorChange(
        "attendance",
        change.who,
        change.at,
        patients_seen=count,
        note=note,
        consultations=change.consultations,
    )


@dataclass(frozen=True)
class VisitStanding:
    """A visit as it stands, for the time-series translator."""

    vehicle: str
    stop: str
    facts: VisitFacts
    state: VisitState
