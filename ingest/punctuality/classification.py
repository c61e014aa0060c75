"""Detected arrivals and departures compared with the scheduled visits.

Arrival/departure pairs (stays) are matched one-to-one to visits of the same vehicle at
the same stop when the arrival falls in the visit's matching window: from
``match_before`` before the scheduled arrival to ``match_after_departure`` after the
scheduled departure. Among the candidates the closest to the scheduled arrival wins. The
delay is actual − scheduled; the class follows from the thresholds, both ends of the on-time
band included. An arrival estimated inside a GPS outage is matched and classed by its
estimate and keeps its bounds. A visit nobody arrived at is missed once its window has
closed at ``as_of``, pending before that. A cancelled visit is cancelled whatever
happened; a stay that matches no visit (a cancelled one, the depot, an unplanned stop, or
far off schedule) is recorded as unscheduled.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from ingest.punctuality.detector import StopArrival, StopEvent
from ingest.punctuality.schedule import Visit

Punctuality = Literal["early", "on_time", "late"]
VisitStatus = Literal["early", "on_time", "late", "missed", "cancelled", "pending"]


@dataclass(frozen=True)
class PunctualityThresholds:
    """``on_time_from`` ≤ delay ≤ ``on_time_until`` is on time; below is early, above late."""

    on_time_from: timedelta = timedelta(minutes=-5)
    on_time_until: timedelta = timedelta(minutes=5)
    match_before: timedelta = timedelta(hours=2)
    match_after_departure: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if self.on_time_from > timedelta(0) or self.on_time_until < timedelta(0):
            raise ValueError("the on-time band must contain a delay of zero")
        if self.match_before < timedelta(0):
            raise ValueError("match_before must not be negative")
        if self.match_before < -self.on_time_from:
            raise ValueError("match_before must cover the on-time band")


def punctuality_of(delay: timedelta, thresholds: PunctualityThresholds) -> Punctuality:
    if delay < thresholds.on_time_from:
        return "early"
    if delay > thresholds.on_time_until:
        return "late"
    return "on_time"


@dataclass(frozen=True)
class Stay:
    """A vehicle at a stop: detected arrival and, once it left, departure. An arrival
    estimated inside a GPS outage has its bounds, ``arrival_earliest``..``arrival_latest``."""

    vehicle: str
    stop: str
    arrival: datetime
    departure: datetime | None = None
    arrival_earliest: datetime | None = None
    arrival_latest: datetime | None = None


@dataclass(frozen=True)
class Reconciliation:
    """Events that contradicted the stay open at the time (from two runs of the detector:
    a drive whose data ended inside a zone, then another), and what was made of them."""

    vehicle: str
    stop: str
    kind: Literal["arrival", "departure"]
    t: datetime
    open_stop: str
    open_since: datetime
    outcome: str


@dataclass(frozen=True)
class VisitOutcome:
    visit: Visit
    status: VisitStatus
    arrival: datetime | None = None
    departure: datetime | None = None
    arrival_delay: timedelta | None = None
    departure_delay: timedelta | None = None
    arrival_earliest: datetime | None = None
    arrival_latest: datetime | None = None


@dataclass(frozen=True)
class PunctualityReport:
    outcomes: tuple[VisitOutcome, ...]
    unscheduled: tuple[Stay, ...]
    reconciled: tuple[Reconciliation, ...] = ()

    def outcome(self, visit_id: str) -> VisitOutcome:
        for o in self.outcomes:
            if o.visit.id == visit_id:
                return o
        raise KeyError(visit_id)


def stays_from_events(events: Iterable[StopEvent]) -> list[Stay]:
    """Each vehicle's stays, in time order (see :func:`reconciled_stays`)."""
    return reconciled_stays(events)[0]


def reconciled_stays(events: Iterable[StopEvent]) -> tuple[list[Stay], list[Reconciliation]]:
    """Pair each vehicle's arrivals with the departures that follow them.

    A departure with no arrival before it belongs to a stay that began before these events
    and is skipped. Events that contradict the open stay never stop the pairing; they are
    reconciled and reported: an arrival at the stop the vehicle is still at is the same
    stay seen again (the earlier arrival stands); an arrival at another stop closes the
    open stay with its departure unknown; a departure from another stop is dropped.
    """
    by_vehicle: dict[str, list[StopEvent]] = {}
    for e in events:
        by_vehicle.setdefault(e.vehicle, []).append(e)
    stays: list[Stay] = []
    reconciled: list[Reconciliation] = []
    for vehicle, own in by_vehicle.items():
        own.sort(key=lambda e: (e.t, isinstance(e, StopArrival)))
        open_stay: StopArrival | None = None
        for e in own:
            if isinstance(e, StopArrival):
                if open_stay is not None:
                    if e.stop == open_stay.stop:
                        outcome = "same stay seen again: the earlier arrival stands"
                    else:
                        outcome = "the open stay is closed, its departure unknown"
                        stays.append(_stay(open_stay, None))
                    reconciled.append(
                        Reconciliation(
                            vehicle, e.stop, "arrival", e.t, open_stay.stop, open_stay.t, outcome
                        )
                    )
                    if e.stop == open_stay.stop:
                        continue
                open_stay = e
            elif open_stay is None:
                continue
            elif e.stop != open_stay.stop:
                reconciled.append(
                    Reconciliation(
                        vehicle,
                        e.stop,
                        "departure",
                        e.t,
                        open_stay.stop,
                        open_stay.t,
                        "departure dropped",
                    )
                )
            else:
                stays.append(_stay(open_stay, e.t))
                open_stay = None
        if open_stay is not None:
            stays.append(_stay(open_stay, None))
    stays.sort(key=lambda s: (s.arrival, s.vehicle))
    return stays, reconciled


def _stay(arrival: StopArrival, departure: datetime | None) -> Stay:
    return Stay(
        arrival.vehicle, arrival.stop, arrival.t, departure, arrival.earliest, arrival.latest
    )


def _window_closes(visit: Visit, thresholds: PunctualityThresholds) -> datetime:
    return visit.scheduled_departure + thresholds.match_after_departure


def _matches(stay: Stay, visit: Visit, thresholds: PunctualityThresholds) -> bool:
    return (
        stay.vehicle == visit.vehicle
        and stay.stop == visit.stop
        and visit.scheduled_arrival - thresholds.match_before
        <= stay.arrival
        <= _window_closes(visit, thresholds)
    )


def classify_visits(
    visits: Sequence[Visit],
    events: Iterable[StopEvent],
    *,
    as_of: datetime,
    thresholds: PunctualityThresholds | None = None,
) -> PunctualityReport:
    """Each visit's outcome as known at ``as_of``, and the stays no visit explains."""
    thresholds = thresholds or PunctualityThresholds()
    if as_of.tzinfo is None:
        raise ValueError("as_of has no time zone")
    events = list(events)
    for e in events:
        if e.t > as_of:
            raise ValueError(
                f"{e.vehicle}: event at {e.stop} at {e.t.isoformat()} is after as_of "
                f"{as_of.isoformat()}"
            )
    ids = [v.id for v in visits]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate visit ids")
    stays, reconciled = reconciled_stays(events)

    visits_at: dict[tuple[str, str], list[int]] = {}
    for v, visit in enumerate(visits):
        if not visit.cancelled:
            visits_at.setdefault((visit.vehicle, visit.stop), []).append(v)
    candidates = sorted(
        (abs(stay.arrival - visits[v].scheduled_arrival), visits[v].id, s, v)
        for s, stay in enumerate(stays)
        for v in visits_at.get((stay.vehicle, stay.stop), ())
        if _matches(stay, visits[v], thresholds)
    )
    stay_of_visit: dict[int, Stay] = {}
    used: set[int] = set()
    for _, _, s, v in candidates:
        if s not in used and v not in stay_of_visit:
            stay_of_visit[v] = stays[s]
            used.add(s)

    outcomes = [
        _outcome(visit, stay_of_visit.get(v), as_of, thresholds) for v, visit in enumerate(visits)
    ]
    unscheduled = tuple(stay for s, stay in enumerate(stays) if s not in used)
    return PunctualityReport(tuple(outcomes), unscheduled, tuple(reconciled))


def _outcome(
    visit: Visit, stay: Stay | None, as_of: datetime, thresholds: PunctualityThresholds
) -> VisitOutcome:
    if visit.cancelled:
        return VisitOutcome(visit, "cancelled")
    if stay is None:
        status: VisitStatus = "pending" if as_of < _window_closes(visit, thresholds) else "missed"
        return VisitOutcome(visit, status)
    delay = stay.arrival - visit.scheduled_arrival
    departure_delay = (
        stay.departure - visit.scheduled_departure if stay.departure is not None else None
    )
    return VisitOutcome(
        visit,
        punctuality_of(delay, thresholds),
        arrival=stay.arrival,
        departure=stay.departure,
        arrival_delay=delay,
        departure_delay=departure_delay,
        arrival_earliest=stay.arrival_earliest,
        arrival_latest=stay.arrival_latest,
    )
