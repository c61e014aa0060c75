"""What really happened in a scenario's day, for checking what the system detected.

The truth is the noise-free motion of the plan: when the bus came to rest inside each
stop's zone, when it left the zone, every interval it spent inside a zone (with its
longest rest there) and every rest of the day. A punctuality benchmark compares
detected arrivals and departures with :attr:`VisitTruth.arrival` and
:attr:`VisitTruth.departure`. Pure: the same scenario and itinerary give the same truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from ingest.itinerary import Itinerary, Stop
from simulators.day_plan import DayPlan, Driving, Parked, plan_day
from simulators.geo import haversine_m
from simulators.scenario import Scenario

Outcome = Literal["visited", "skipped", "driven_by"]


@dataclass(frozen=True)
class VisitTruth:
    """One scheduled visit of the day. ``arrival``: the bus came to rest inside the zone;
    ``departure``: it left the zone; ``set_off``: it started driving away."""

    stop: str
    scheduled_arrival: datetime
    scheduled_departure: datetime
    outcome: Outcome
    arrival: datetime | None
    departure: datetime | None
    set_off: datetime | None

    @property
    def delay_s(self) -> float | None:
        if self.arrival is None:
            return None
        return (self.arrival - self.scheduled_arrival).total_seconds()


@dataclass(frozen=True)
class ZoneInterval:
    """The bus inside ``stop``'s circle from ``entered`` to ``left`` (None: still there at
    the end of the day); ``longest_rest_s``: its longest standstill inside."""

    stop: str
    entered: datetime
    left: datetime | None
    longest_rest_s: float


@dataclass(frozen=True)
class Rest:
    """The bus standing still at (lat, lon); ``stop`` is the zone it stood in, if any,
    ``from_centre_m`` its distance from that stop's centre (or the nearest stop's)."""

    start: datetime
    end: datetime
    lat: float
    lon: float
    stop: str | None
    from_centre_m: float

    @property
    def duration_s(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class ScenarioTruth:
    scenario: str
    vehicle: str
    day: date
    start: datetime
    end: datetime
    visits: tuple[VisitTruth, ...]
    zone_intervals: tuple[ZoneInterval, ...]
    rests: tuple[Rest, ...]

    def intervals_at(self, stop: str) -> list[ZoneInterval]:
        return [z for z in self.zone_intervals if z.stop == stop]


def _samples(plan: DayPlan) -> list[tuple[float, float, float, float]]:
    """(t, lat, lon, speed) through the day: both ends of each parked phase and every step
    of every drive."""
    out: list[tuple[float, float, float, float]] = []
    for phase in plan.phases:
        if isinstance(phase, Parked):
            out.append((phase.start_s, phase.place.lat, phase.place.lon, 0.0))
            out.append((min(phase.end_s, plan.end_s), phase.place.lat, phase.place.lon, 0.0))
        else:
            for t, s, v in zip(
                phase.trajectory.times,
                phase.trajectory.distances,
                phase.trajectory.speeds,
                strict=True,
            ):
                lat, lon, _ = phase.road.at(s)
                out.append((t, lat, lon, v))
    return [p for p in out if p[0] <= plan.end_s]


def _rests(plan: DayPlan) -> list[tuple[float, float, float, float]]:
    """(start, end, lat, lon) of each standstill, clipped to the day."""
    out: list[tuple[float, float, float, float]] = []
    for phase in plan.phases:
        if phase.start_s >= plan.end_s:
            break
        if isinstance(phase, Parked):
            end = min(phase.end_s, plan.end_s)
            out.append((phase.start_s, end, phase.place.lat, phase.place.lon))
        elif isinstance(phase, Driving):
            for start, end, s in phase.trajectory.rests():
                lat, lon, _ = phase.road.at(s)
                out.append((start, min(end, plan.end_s), lat, lon))
    return out


def _zone_intervals(
    plan: DayPlan, stop: Stop, samples: list[tuple[float, float, float, float]]
) -> list[tuple[float, float | None]]:
    intervals: list[tuple[float, float | None]] = []
    entered: float | None = None
    prev: tuple[float, float] | None = None  # (t, distance - radius)
    for t, lat, lon, _ in samples:
        outside_by = haversine_m(lat, lon, stop.lat, stop.lon) - stop.radius_m
        if prev is None:
            if outside_by <= 0:
                entered = t
        else:
            t0, d0 = prev
            # The crossing, interpolated between the two samples around it.
            crossing = t0 + (t - t0) * (d0 / (d0 - outside_by)) if d0 != outside_by else t
            if entered is None and outside_by <= 0 < d0:
                entered = crossing
            elif entered is not None and d0 <= 0 < outside_by:
                intervals.append((entered, crossing))
                entered = None
        prev = (t, outside_by)
    if entered is not None:
        intervals.append((entered, None))
    return intervals


def truth_of(plan: DayPlan) -> ScenarioTruth:
    samples = _samples(plan)
    rests = _rests(plan)
    stops = plan.itinerary.stops
    intervals: list[ZoneInterval] = []
    for stop in stops:
        for entered, left in _zone_intervals(plan, stop, samples):
            end = left if left is not None else plan.end_s
            inside_rests = [
                min(r_end, end) - max(r_start, entered)
                for r_start, r_end, lat, lon in rests
                if r_start < end
                and r_end > entered
                and haversine_m(lat, lon, stop.lat, stop.lon) <= stop.radius_m
            ]
            intervals.append(
                ZoneInterval(
                    stop.id,
                    plan.time_of(entered),
                    plan.time_of(left) if left is not None else None,
                    max(inside_rests, default=0.0),
                )
            )
    intervals.sort(key=lambda z: z.entered)

    rest_truths = []
    for start, end, lat, lon in rests:
        nearest = min(stops, key=lambda s: haversine_m(lat, lon, s.lat, s.lon))
        distance = haversine_m(lat, lon, nearest.lat, nearest.lon)
        rest_truths.append(
            Rest(
                plan.time_of(start),
                plan.time_of(end),
                lat,
                lon,
                nearest.id if distance <= nearest.radius_m else None,
                distance,
            )
        )

    through = {name for p in plan.phases if isinstance(p, Driving) for name in p.through}
    visits = []
    for v in plan.visits:
        arrival = plan.time_of(v.arrival_s) if v.arrival_s is not None else None
        departure = None
        if arrival is not None:
            for z in intervals:
                if z.stop == v.stop.id and z.entered <= arrival and (z.left or plan.end) >= arrival:
                    departure = z.left
        outcome: Outcome = "visited"
        if v.skipped:
            outcome = "driven_by" if v.stop.id in through else "skipped"
        visits.append(
            VisitTruth(
                stop=v.stop.id,
                scheduled_arrival=plan.time_of(v.scheduled_arrival_s),
                scheduled_departure=plan.time_of(v.scheduled_departure_s),
                outcome=outcome,
                arrival=arrival,
                departure=departure,
                set_off=plan.time_of(v.set_off_s) if v.set_off_s is not None else None,
            )
        )
    return ScenarioTruth(
        scenario=plan.scenario.name,
        vehicle=plan.vehicle.id,
        day=plan.scenario.day.date,
        start=plan.start,
        end=plan.end,
        visits=tuple(visits),
        zone_intervals=tuple(intervals),
        rests=tuple(rest_truths),
    )


def scenario_truth(scenario: Scenario, itinerary: Itinerary) -> ScenarioTruth:
    """The ground truth of ``scenario``'s day on ``itinerary``."""
    return truth_of(plan_day(scenario, itinerary))
