"""The road a simulated bus drives between two places: its bends and its speed limits.

Real roads between communes are not great circles: a :class:`Road` goes through a few
bends whose places depend only on the two ends (the same road every day, either way).
Speed limits follow the French pattern: 30 km/h in a commune's centre, 50 km/h in the
village, 80 km/h on a departmental road between communes (60 km/h on a short local
road). Bends are taken at a speed that falls with their angle.
"""

from __future__ import annotations

import itertools
import math
import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from simulators.geo import bearing_deg, haversine_m, interpolate, offset

RoadKind = Literal["departmental", "local"]

KMH: Final = 1 / 3.6
ROAD_SPEED_KMH: Final[dict[RoadKind, float]] = {"departmental": 80.0, "local": 60.0}
VILLAGE_KMH: Final = 50.0
CENTRE_KMH: Final = 30.0
VILLAGE_RADIUS_M: Final = 900.0
CENTRE_RADIUS_M: Final = 300.0
# A leg at least this long (as the crow flies) is driven on departmental roads.
DEPARTMENTAL_FROM_M: Final = 6000.0
BEND_EVERY_M: Final = 2000.0
MAX_BENDS: Final = 6
SLOWEST_BEND_KMH: Final = 15.0
_LIMIT_STEP_M: Final = 20.0


@dataclass(frozen=True)
class Place:
    """A named point the bus drives from, to or through (a stop's parking place)."""

    name: str
    lat: float
    lon: float


@dataclass(frozen=True)
class SpeedZone:
    start_m: float
    end_m: float
    limit_mps: float


@dataclass(frozen=True)
class Bend:
    at_m: float
    turn_deg: float
    speed_mps: float


def road_kind_for(length_m: float) -> RoadKind:
    return "departmental" if length_m >= DEPARTMENTAL_FROM_M else "local"


def bend_speed_mps(turn_deg: float, cruise_mps: float) -> float:
    """A gentle bend is taken at cruising speed, a right angle at about 22 km/h."""
    kmh = max(SLOWEST_BEND_KMH, 90.0 - 0.75 * turn_deg)
    return min(cruise_mps, kmh * KMH)


def _section_points(a: Place, b: Place) -> list[tuple[float, float]]:
    """The bends between ``a`` and ``b``, the same whichever way it is driven."""
    first, last = (a, b) if a.name <= b.name else (b, a)
    length = haversine_m(first.lat, first.lon, last.lat, last.lon)
    count = min(MAX_BENDS, int(length // BEND_EVERY_M))
    rng = random.Random(zlib.crc32(f"{first.name}>{last.name}".encode()))
    heading = math.radians(bearing_deg(first.lat, first.lon, last.lat, last.lon))
    points = [(first.lat, first.lon)]
    for i in range(count):
        # Bends stay in the middle of the section so both ends arrive straight.
        f = 0.2 + 0.6 * (i + 0.5 + rng.uniform(-0.3, 0.3)) / count
        lateral = max(-0.15, min(0.15, rng.gauss(0.0, 0.08))) * length
        lat, lon = interpolate(first.lat, first.lon, last.lat, last.lon, f)
        # Perpendicular to the section, to its right for a positive offset.
        points.append(offset(lat, lon, -math.sin(heading) * lateral, math.cos(heading) * lateral))
    points.append((last.lat, last.lon))
    return points if first is a else points[::-1]


class Road:
    """A polyline from the first place to the last, through the ones between.

    ``towns`` are the places whose village speed limits apply where the road passes
    near them (usually every stop of the itinerary).
    """

    def __init__(
        self,
        places: Sequence[Place],
        towns: Sequence[Place],
        kind: RoadKind | None = None,
    ) -> None:
        if len(places) < 2:
            raise ValueError("a road joins at least two places")
        points: list[tuple[float, float]] = [(places[0].lat, places[0].lon)]
        for a, b in itertools.pairwise(places):
            points.extend(_section_points(a, b)[1:])
        self.places = tuple(places)
        self.points = tuple(points)
        self.cumulative: tuple[float, ...] = tuple(self._cumulative(points))
        self.courses = tuple(
            bearing_deg(*p, *q) if p != q else 0.0 for p, q in itertools.pairwise(points)
        )
        direct = haversine_m(places[0].lat, places[0].lon, places[-1].lat, places[-1].lon)
        self.kind: RoadKind = kind or road_kind_for(direct)
        cruise = ROAD_SPEED_KMH[self.kind] * KMH
        self.cruise_mps = cruise
        self.bends = tuple(self._bends(cruise))
        self.zones = tuple(self._zones(towns, cruise))

    @staticmethod
    def _cumulative(points: Sequence[tuple[float, float]]) -> list[float]:
        total = 0.0
        out = [0.0]
        for p, q in itertools.pairwise(points):
            total += haversine_m(*p, *q)
            out.append(total)
        return out

    @property
    def length_m(self) -> float:
        return self.cumulative[-1]

    def _bends(self, cruise: float) -> list[Bend]:
        bends = []
        for i in range(1, len(self.points) - 1):
            turn = abs((self.courses[i] - self.courses[i - 1] + 180.0) % 360.0 - 180.0)
            if turn > 8.0:
                bends.append(Bend(self.cumulative[i], turn, bend_speed_mps(turn, cruise)))
        return bends

    def _zones(self, towns: Sequence[Place], cruise: float) -> list[SpeedZone]:
        near = [
            t
            for t in towns
            if any(
                haversine_m(t.lat, t.lon, lat, lon) < self.length_m + VILLAGE_RADIUS_M
                for lat, lon in (self.points[0], self.points[-1])
            )
        ]
        zones: list[SpeedZone] = []
        steps = max(1, math.ceil(self.length_m / _LIMIT_STEP_M))
        for k in range(steps):
            start = k * self.length_m / steps
            end = (k + 1) * self.length_m / steps
            lat, lon, _ = self.at((start + end) / 2)
            nearest = min((haversine_m(t.lat, t.lon, lat, lon) for t in near), default=math.inf)
            if nearest < CENTRE_RADIUS_M:
                limit = CENTRE_KMH * KMH
            elif nearest < VILLAGE_RADIUS_M:
                limit = VILLAGE_KMH * KMH
            else:
                limit = cruise
            if zones and zones[-1].limit_mps == limit:
                zones[-1] = SpeedZone(zones[-1].start_m, end, limit)
            else:
                zones.append(SpeedZone(start, end, limit))
        return zones

    def limit_at(self, s: float) -> float:
        for zone in self.zones:
            if s < zone.end_m:
                return zone.limit_mps
        return self.zones[-1].limit_mps

    def at(self, s: float) -> tuple[float, float, float]:
        """Latitude, longitude and course ``s`` metres along the road."""
        s = min(max(s, 0.0), self.length_m)
        lo, hi = 0, len(self.cumulative) - 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.cumulative[mid] <= s:
                lo = mid
            else:
                hi = mid
        seg = self.cumulative[hi] - self.cumulative[lo]
        f = (s - self.cumulative[lo]) / seg if seg > 0 else 0.0
        lat, lon = interpolate(*self.points[lo], *self.points[hi], f)
        return lat, lon, self.courses[min(lo, len(self.courses) - 1)]

    def distance_where(self, place: Place, radius_m: float, before_m: float) -> float:
        """The last point before ``before_m`` where the road is ``radius_m`` from ``place``
        (where it enters a zone of that radius around the place)."""
        s = before_m
        while s > 0 and haversine_m(*self.at(s)[:2], place.lat, place.lon) < radius_m:
            s -= 1.0
        return max(0.0, s)
