"""Expected arrival times at the next stops, from where the vehicle is now.

Deliberately simple: the great-circle distance times a road-detour factor, at a speed the
caller chooses (a typical rural average, or the vehicle's recent average). Each following
visit starts from the previous stop, no earlier than that visit's scheduled departure.

Where the vehicle has driven a leg before, its own speed on that leg is better than any
average: :func:`leg_speeds` takes the median over its past trips between the same two
stops (departure from one to arrival at the next), and :func:`upcoming_etas` uses it for
the legs it knows.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ingest.geo import haversine_m
from ingest.itinerary import Stop
from ingest.punctuality.classification import Stay
from ingest.punctuality.schedule import Visit

# Rural roads in the Vexin and the Pays de Caux run about a third longer than the crow flies.
DEFAULT_DETOUR_FACTOR = 1.3
# A "trip" between two stays longer than this was not a drive from one stop to the next
# (a night at the depot, a breakdown): it says nothing about the road.
MAX_LEG_DURATION = timedelta(hours=3)


@dataclass(frozen=True)
class Eta:
    visit: Visit
    road_distance_m: float
    expected_arrival: datetime

    @property
    def expected_delay(self) -> timedelta:
        return self.expected_arrival - self.visit.scheduled_arrival


def road_distance_m(
    lat: float, lon: float, stop: Stop, detour_factor: float = DEFAULT_DETOUR_FACTOR
) -> float:
    if not (1.0 <= detour_factor < math.inf):
        raise ValueError(f"detour factor {detour_factor} must be at least 1")
    return haversine_m(lat, lon, stop.lat, stop.lon) * detour_factor


def travel_time(
    lat: float,
    lon: float,
    stop: Stop,
    speed_mps: float,
    detour_factor: float = DEFAULT_DETOUR_FACTOR,
) -> timedelta:
    """Time to drive from (lat, lon) to ``stop`` at ``speed_mps`` on the road estimate."""
    if not (0.0 < speed_mps < math.inf):
        raise ValueError(f"speed {speed_mps} m/s must be positive and finite")
    return timedelta(seconds=road_distance_m(lat, lon, stop, detour_factor) / speed_mps)


def upcoming_etas(
    vehicle: str,
    lat: float,
    lon: float,
    at: datetime,
    *,
    visits: Sequence[Visit],
    stops: Mapping[str, Stop],
    speed_mps: float,
    detour_factor: float = DEFAULT_DETOUR_FACTOR,
    done: Collection[str] = (),
    limit: int = 3,
    leg_speed_mps: Mapping[tuple[str, str], float] | None = None,
    from_stop: str | None = None,
) -> list[Eta]:
    """ETAs for the vehicle's next ``limit`` visits not cancelled, not ``done`` (visit ids
    already arrived at) and not over (scheduled departure after ``at``).

    A leg found in ``leg_speed_mps`` (from stop, to stop) is driven at that speed, others at
    ``speed_mps``; the first leg is from ``from_stop``, the stop the vehicle left last."""
    if at.tzinfo is None:
        raise ValueError("at has no time zone")
    if limit < 1:
        raise ValueError("limit must be at least 1")
    upcoming = sorted(
        (
            v
            for v in visits
            if v.vehicle == vehicle
            and not v.cancelled
            and v.id not in done
            and v.scheduled_departure > at
        ),
        key=lambda v: v.scheduled_arrival,
    )[:limit]
    etas: list[Eta] = []
    here, leave, previous = (lat, lon), at, from_stop
    known = leg_speed_mps or {}
    for visit in upcoming:
        try:
            stop = stops[visit.stop]
        except KeyError:
            raise ValueError(f"visit {visit.id}: unknown stop {visit.stop!r}") from None
        speed = known.get((previous, visit.stop), speed_mps) if previous else speed_mps
        distance = road_distance_m(here[0], here[1], stop, detour_factor)
        arrival = leave + travel_time(here[0], here[1], stop, speed, detour_factor)
        etas.append(Eta(visit, distance, arrival))
        here, previous = (stop.lat, stop.lon), visit.stop
        leave = max(arrival, visit.scheduled_departure)
    return etas


def leg_speeds(
    stays: Iterable[Stay],
    stops: Mapping[str, Stop],
    detour_factor: float = DEFAULT_DETOUR_FACTOR,
) -> dict[tuple[str, str], float]:
    """Median road speed (m/s) of each leg (from stop, to stop) one vehicle drove: the road
    distance estimate over the time from leaving one stop to arriving at the next."""
    speeds: dict[tuple[str, str], list[float]] = defaultdict(list)
    ordered = sorted(stays, key=lambda s: s.arrival)
    vehicles = {s.vehicle for s in ordered}
    if len(vehicles) > 1:
        raise ValueError(f"stays of several vehicles: {', '.join(sorted(vehicles))}")
    for before, after in itertools.pairwise(ordered):
        if before.departure is None or before.stop == after.stop:
            continue
        duration = after.arrival - before.departure
        if not timedelta(0) < duration <= MAX_LEG_DURATION:
            continue
        if before.stop not in stops or after.stop not in stops:
            continue
        origin = stops[before.stop]
        distance = road_distance_m(origin.lat, origin.lon, stops[after.stop], detour_factor)
        speeds[(before.stop, after.stop)].append(distance / duration.total_seconds())
    return {leg: statistics.median(values) for leg, values in speeds.items()}
