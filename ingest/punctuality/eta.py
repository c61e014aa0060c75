"""Expected arrival times at the next stops, from where the vehicle is now.

Deliberately simple: the great-circle distance times a road-detour factor, at a speed the
caller chooses (a typical rural average, or the vehicle's recent average). Each following
visit starts from the previous stop, no earlier than that visit's scheduled departure.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ingest.itinerary import Stop
from ingest.punctuality.geo import haversine_m
from ingest.punctuality.schedule import Visit

# Rural roads in the Vexin and the Pays de Caux run about a third longer than the crow flies.
DEFAULT_DETOUR_FACTOR = 1.3


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
) -> list[Eta]:
    """ETAs for the vehicle's next ``limit`` visits not cancelled, not ``done`` (visit ids
    already arrived at) and not over (scheduled departure after ``at``)."""
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
    here, leave = (lat, lon), at
    for visit in upcoming:
        try:
            stop = stops[visit.stop]
        except KeyError:
            raise ValueError(f"visit {visit.id}: unknown stop {visit.stop!r}") from None
        distance = road_distance_m(here[0], here[1], stop, detour_factor)
        arrival = leave + travel_time(here[0], here[1], stop, speed_mps, detour_factor)
        etas.append(Eta(visit, distance, arrival))
        here = (stop.lat, stop.lon)
        leave = max(arrival, visit.scheduled_departure)
    return etas
