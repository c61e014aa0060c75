"""Where a simulated bus is at a given time: legs between stops, speed profile, dwell."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from ingest.itinerary import Itinerary
from simulators.geo import bearing_deg, haversine_m, interpolate


@dataclass(frozen=True)
class MotionState:
    lat: float
    lon: float
    speed_mps: float
    course_deg: float
    at_stop: str | None


@dataclass(frozen=True)
class Waypoint:
    name: str
    lat: float
    lon: float


@dataclass(frozen=True)
class _Leg:
    start: Waypoint
    end: Waypoint
    length_m: float
    course_deg: float
    drive_s: float


class DriveRoute:
    """Drives from waypoint to waypoint along great circles, then waits ``dwell_s``.

    The speed follows a trapezoid: constant acceleration up to ``cruise_mps``, cruise,
    symmetric braking. With ``loop`` the tour restarts from the first waypoint.
    """

    def __init__(
        self,
        waypoints: Sequence[Waypoint],
        cruise_mps: float = 13.9,
        accel_mps2: float = 1.0,
        dwell_s: float = 60.0,
        loop: bool = True,
    ) -> None:
        if len(waypoints) < 2:
            raise ValueError("a route needs at least two waypoints")
        self.cruise_mps = cruise_mps
        self.accel = accel_mps2
        self.dwell_s = dwell_s
        points = list(waypoints) + ([waypoints[0]] if loop else [])
        self._legs = [self._leg(a, b) for a, b in itertools.pairwise(points)]
        self.loop = loop
        self.period_s = sum(leg.drive_s + dwell_s for leg in self._legs)

    def _leg(self, a: Waypoint, b: Waypoint) -> _Leg:
        length = haversine_m(a.lat, a.lon, b.lat, b.lon)
        ramp = self.cruise_mps**2 / self.accel  # distance to speed up and slow down
        if length >= ramp:
            drive = length / self.cruise_mps + self.cruise_mps / self.accel
        else:
            drive = 2 * math.sqrt(length / self.accel)
        return _Leg(a, b, length, bearing_deg(a.lat, a.lon, b.lat, b.lon), drive)

    def _distance_and_speed(self, leg: _Leg, t: float) -> tuple[float, float]:
        v, a = self.cruise_mps, self.accel
        t_ramp = v / a
        if leg.length_m < v * v / a:
            t_ramp = leg.drive_s / 2
            v = a * t_ramp
        if t < t_ramp:
            return 0.5 * a * t * t, a * t
        if t > leg.drive_s - t_ramp:
            rest = leg.drive_s - t
            return leg.length_m - 0.5 * a * rest * rest, a * rest
        return 0.5 * a * t_ramp * t_ramp + v * (t - t_ramp), v

    def state_at(self, elapsed_s: float) -> MotionState:
        """State ``elapsed_s`` seconds after leaving the first waypoint."""
        if self.loop:
            elapsed_s %= self.period_s
        remaining = max(0.0, elapsed_s)
        for leg in self._legs:
            if remaining < leg.drive_s:
                dist, speed = self._distance_and_speed(leg, remaining)
                frac = min(1.0, max(0.0, dist / leg.length_m)) if leg.length_m > 0 else 1.0
                lat, lon = interpolate(leg.start.lat, leg.start.lon, leg.end.lat, leg.end.lon, frac)
                return MotionState(lat, lon, speed, leg.course_deg, None)
            remaining -= leg.drive_s
            if remaining < self.dwell_s:
                return MotionState(leg.end.lat, leg.end.lon, 0.0, leg.course_deg, leg.end.name)
            remaining -= self.dwell_s
        last = self._legs[-1]
        return MotionState(last.end.lat, last.end.lon, 0.0, last.course_deg, last.end.name)


def weekly_tour(itinerary: Itinerary, vehicle_id: str) -> list[Waypoint]:
    """The depot, then each stop of the vehicle's week in timetable order (no repeats
    back to back)."""
    vehicle = itinerary.vehicle(vehicle_id)
    depot = itinerary.stop(vehicle.depot)
    tour = [Waypoint(depot.id, depot.lat, depot.lon)]
    for slot in itinerary.slots_of(vehicle_id):
        stop = itinerary.stop(slot.stop)
        if tour[-1].name != stop.id:
            tour.append(Waypoint(stop.id, stop.lat, stop.lon))
    if len(tour) > 1 and tour[-1].name == tour[0].name:
        tour.pop()
    return tour
