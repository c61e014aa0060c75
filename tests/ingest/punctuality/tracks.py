"""Hand-made GPS tracks around a stop: 1 Hz fixes with seeded noise, positions written in
metres east and north of an origin (a stop's centre)."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

from ingest.geo import EARTH_RADIUS_M, haversine_m
from ingest.itinerary import Stop
from ingest.punctuality.detector import Fix


def offset(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    """The point ``east_m``/``north_m`` metres from (lat, lon), flat-Earth (fine below 10 km)."""
    dlat = math.degrees(north_m / EARTH_RADIUS_M)
    dlon = math.degrees(east_m / (EARTH_RADIUS_M * math.cos(math.radians(lat))))
    return lat + dlat, lon + dlon


def stop_at(stop_id: str = "place", radius_m: float = 150.0) -> Stop:
    return Stop(id=stop_id, name=stop_id.title(), lat=49.2411, lon=1.6333, radius_m=radius_m)


class Track:
    """Builds a vehicle's fixes segment by segment; ``now`` is the time of the next fix."""

    def __init__(
        self,
        origin: Stop,
        start: datetime,
        at: tuple[float, float] = (0.0, -1000.0),
        seed: int = 1,
        noise_m: float = 3.0,
    ) -> None:
        self.origin = origin
        self.now = start
        self.east, self.north = at
        self.rng = random.Random(seed)
        self.noise_m = noise_m
        self.fixes: list[Fix] = []

    def _fix(self, east: float, north: float, speed: float, hdop: float = 0.9) -> None:
        e = east + self.rng.gauss(0.0, self.noise_m)
        n = north + self.rng.gauss(0.0, self.noise_m)
        lat, lon = offset(self.origin.lat, self.origin.lon, e, n)
        self.fixes.append(Fix(self.now, lat, lon, max(0.0, speed), hdop))
        self.now += timedelta(seconds=1)

    def drive_to(self, east: float, north: float, speed_mps: float = 12.0) -> Track:
        """Drive in a straight line at ``speed_mps``, one fix a second, ending at the point."""
        de, dn = east - self.east, north - self.north
        steps = max(1, math.ceil(math.hypot(de, dn) / speed_mps))
        for i in range(1, steps + 1):
            f = i / steps
            self._fix(self.east + de * f, self.north + dn * f, speed_mps + self.rng.gauss(0, 0.3))
        self.east, self.north = east, north
        return self

    def rest(self, seconds: int) -> Track:
        """Stand still: jitter of ``noise_m`` and a receiver speed of a few cm/s."""
        for _ in range(seconds):
            self._fix(self.east, self.north, abs(self.rng.gauss(0.0, 0.15)))
        return self

    def spike(self, east_m: float, north_m: float) -> Track:
        """One stray fix (multipath) away from where the vehicle really is."""
        self._fix(self.east + east_m, self.north + north_m, abs(self.rng.gauss(0.0, 0.15)))
        return self

    def imprecise(self, seconds: int, hdop: float = 25.0) -> Track:
        for _ in range(seconds):
            self._fix(self.east, self.north, 0.0, hdop)
        return self

    def gap(self, seconds: int, moved_to: tuple[float, float] | None = None) -> Track:
        """No fix for ``seconds``; the vehicle may have moved meanwhile."""
        self.now += timedelta(seconds=seconds)
        if moved_to is not None:
            self.east, self.north = moved_to
        return self

    def distance_m(self, fix: Fix) -> float:
        return haversine_m(self.origin.lat, self.origin.lon, fix.lat, fix.lon)


def to_local(origin: Stop, lat: float, lon: float) -> tuple[float, float]:
    """Metres east and north of ``origin`` (inverse of ``offset``)."""
    north = math.radians(lat - origin.lat) * EARTH_RADIUS_M
    east = math.radians(lon - origin.lon) * EARTH_RADIUS_M * math.cos(math.radians(origin.lat))
    return east, north
