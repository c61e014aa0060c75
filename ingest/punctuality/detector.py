"""Arrival at and departure from stops, detected from one vehicle's GPS fixes.

``ArrivalDetector`` is a pure state machine for one vehicle: fixes in, ``StopArrival`` and
``StopDeparture`` out, with the evidence behind each. No clock: every time is a fix time.

Rest. The vehicle is at rest while its reported speed is below ``rest_speed_mps`` and its
fixes stay within ``rest_radius_m`` of the mean position of the current rest (the anchor):
GPS jitter of a few metres does not break a rest, and neither do fewer than
``rest_break_fixes`` consecutive stray fixes (a multipath spike). A gap in the fixes does
not break it either: if the fix after an outage is still at rest at the anchor, the rest
(and the stay) goes on, so the bus may power its GPS off during consultations.

Arrival. A rest whose anchor lies within a stop's radius plus ``zone_tolerance_m`` (parking
just outside the circle) and which has lasted ``dwell_s`` is an arrival at that stop. The
arrival time is when the rest began, not when the rule fired. A drive-by never rests; a
traffic light at the zone's edge rests for less than the dwell; a bus that waits outside
the zone and then drives in arrives when it comes to rest inside.

Arrival inside an outage. When the rest's first fix comes after a gap of at least
``outage_gap_s`` (covered car park, dead zone) and away from the fix before the gap, the
bus came to rest somewhere in the gap, not at that first fix. The arrival is then
estimated from the last fix before the gap: the distance left to the rest's anchor
(times ``detour_factor``), driven at the mean speed of the last ``speed_window_s`` before
the gap, plus the time to brake from that speed. It is bounded: not before the bus could
have covered the straight-line distance at ``max_speed_mps``, not after the first fix of
the rest. The arrival carries these bounds (``earliest``, ``latest``); an observed arrival
has none. After a gap longer than ``max_outage_s`` (a receiver off for hours) the estimate
is the first fix of the rest, with the same bounds.

Departure. Once arrived, the vehicle departs when it is seen outside the zone (beyond
radius + tolerance + ``exit_hysteresis_m``) continuously for ``exit_time_s``, or for
``exit_confirm_fixes`` fixes with the latest farther than ``exit_distance_m`` beyond the
zone. A manoeuvre in a car park that straddles the edge is shorter and closer than that.
The departure time is when the bus set off from where it last rested inside the zone (the
last fix of that rest), not the last fix inside the zone, which lags by the time needed
to drive out of it.

Out-of-order and late fixes. Fixes are processed in time order through a reorder buffer:
a fix is held until the newest fix time seen is ``reorder_window_s`` past it, so fixes
reordered within that window are processed as if they had come in order. A fix older than
what has already been processed is dropped and counted (``late_fixes``), as are
duplicates and fixes with a poor HDOP. The window is event time (fix time), never wall
time, so a backlog replayed in order after a long outage is not late. For fixes later than
the window (or to re-derive a day after any change), ``detect_stops`` sorts a whole set of
stored fixes and runs a fresh detector over them: the detector is deterministic, so this
re-derivation is the authoritative answer.

Detector state is in memory; a restarted process re-derives it with ``detect_stops`` over
the recent fixes.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from ingest.geo import haversine_m
from ingest.itinerary import Stop
from protocol.wire import GpsSample

# Stops farther than this from where a rest began cannot contain its anchor; skipping them
# keeps the per-fix work proportional to the stops nearby, not to the whole network.
_NEAR_MARGIN_M = 100.0


@dataclass(frozen=True)
class Fix:
    """One position of the vehicle: aware time (normalised to UTC), WGS84 degrees, speed over
    ground if the receiver gave one, and horizontal dilution of precision if known."""

    t: datetime
    lat: float
    lon: float
    speed_mps: float | None = None
    hdop: float | None = None

    def __post_init__(self) -> None:
        if self.t.tzinfo is None or self.t.utcoffset() is None:
            raise ValueError(f"fix time {self.t.isoformat()} has no time zone")
        if not -90.0 <= self.lat <= 90.0:
            raise ValueError(f"latitude {self.lat} out of range")
        if not -180.0 <= self.lon <= 180.0:
            raise ValueError(f"longitude {self.lon} out of range")
        if self.speed_mps is not None and not (0.0 <= self.speed_mps < math.inf):
            raise ValueError(f"speed {self.speed_mps} m/s is not a finite non-negative number")
        if self.hdop is not None and not (0.0 <= self.hdop < math.inf):
            raise ValueError(f"hdop {self.hdop} is not a finite non-negative number")
        object.__setattr__(self, "t", self.t.astimezone(UTC))

    @classmethod
    def from_sample(cls, sample: GpsSample) -> Fix | None:
        """The fix in a GPS sample, or None when the receiver had no fix."""
        if sample.fix_mode == 1 or sample.quality == 0:
            return None
        return cls(sample.t, sample.lat, sample.lon, sample.speed_mps, sample.hdop)


@dataclass(frozen=True)
class DetectorConfig:
    zone_tolerance_m: float = 50.0
    rest_speed_mps: float = 1.0
    rest_radius_m: float = 25.0
    rest_break_fixes: int = 3
    dwell_s: float = 120.0
    exit_hysteresis_m: float = 25.0
    exit_time_s: float = 60.0
    exit_distance_m: float = 300.0
    exit_confirm_fixes: int = 3
    max_hdop: float = 10.0
    reorder_window_s: float = 30.0
    outage_gap_s: float = 20.0
    # Beyond this, where the bus was before the gap says little about when it arrived: the
    # arrival is the first fix of the rest, still with its bounds.
    max_outage_s: float = 3600.0
    # No médicobus drives faster than the motorway limit (130 km/h): the earliest arrival.
    max_speed_mps: float = 36.2
    speed_window_s: float = 60.0
    detour_factor: float = 1.25
    brake_mps2: float = 1.0
    # An approach speed below this (the receiver's last fixes in a queue) is not a speed to
    # drive the rest of the way at; a car park's crawl is.
    min_approach_speed_mps: float = 5.0

    def __post_init__(self) -> None:
        for name in (
            "rest_speed_mps",
            "rest_radius_m",
            "dwell_s",
            "max_hdop",
            "outage_gap_s",
            "max_outage_s",
            "max_speed_mps",
            "speed_window_s",
            "brake_mps2",
            "min_approach_speed_mps",
        ):
            value = getattr(self, name)
            if not (0.0 < value < math.inf):
                raise ValueError(f"{name} must be positive and finite, got {value}")
        for name in (
            "zone_tolerance_m",
            "exit_hysteresis_m",
            "exit_time_s",
            "exit_distance_m",
            "reorder_window_s",
        ):
            value = getattr(self, name)
            if not (0.0 <= value < math.inf):
                raise ValueError(f"{name} must be non-negative and finite, got {value}")
        for name in ("rest_break_fixes", "exit_confirm_fixes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not (1.0 <= self.detour_factor < math.inf):
            raise ValueError(
                f"detour_factor must be at least 1 and finite, got {self.detour_factor}"
            )


@dataclass(frozen=True)
class Evidence:
    """The fixes that decided an event: how many, the farthest from the stop's centre, and
    the time span they cover."""

    fixes: int
    max_distance_m: float
    first_fix: datetime
    last_fix: datetime


@dataclass(frozen=True)
class StopArrival:
    """``t`` is when the bus came to rest; when that fell in a gap of the fixes, ``t`` is an
    estimate and ``earliest``..``latest`` bound it (both None for an observed arrival)."""

    vehicle: str
    stop: str
    t: datetime
    evidence: Evidence
    earliest: datetime | None = None
    latest: datetime | None = None

    @property
    def estimated(self) -> bool:
        return self.earliest is not None


@dataclass(frozen=True)
class StopDeparture:
    vehicle: str
    stop: str
    t: datetime
    evidence: Evidence


StopEvent = StopArrival | StopDeparture


@dataclass(frozen=True)
class _Zone:
    stop: str
    lat: float
    lon: float
    radius_m: float

    def distance_m(self, lat: float, lon: float) -> float:
        return haversine_m(self.lat, self.lon, lat, lon)


@dataclass(frozen=True)
class _Approach:
    """The last fix before a gap after which a rest began: where and how fast the bus was."""

    t: datetime
    lat: float
    lon: float
    speed_mps: float | None


class _Rest:
    """A run of fixes at rest around their mean position (the anchor); ``approach`` when it
    began after a gap in the fixes, away from the fix before the gap."""

    __slots__ = ("approach", "first", "last", "max_distance", "n", "sum_lat", "sum_lon")

    def __init__(self, fix: Fix, near: Iterable[_Zone], approach: _Approach | None = None) -> None:
        self.first = fix.t
        self.last = fix.t
        self.approach = approach
        self.n = 0
        self.sum_lat = 0.0
        self.sum_lon = 0.0
        self.max_distance: dict[_Zone, float] = dict.fromkeys(near, 0.0)
        self.add(fix)

    @property
    def anchor(self) -> tuple[float, float]:
        return self.sum_lat / self.n, self.sum_lon / self.n

    @property
    def seconds(self) -> float:
        return (self.last - self.first).total_seconds()

    def fits(self, fix: Fix, config: DetectorConfig) -> bool:
        lat, lon = self.anchor
        return (
            _slow(fix, config) and haversine_m(lat, lon, fix.lat, fix.lon) <= config.rest_radius_m
        )

    def add(self, fix: Fix) -> None:
        self.last = fix.t
        self.n += 1
        self.sum_lat += fix.lat
        self.sum_lon += fix.lon
        for zone, far in self.max_distance.items():
            self.max_distance[zone] = max(far, zone.distance_m(fix.lat, fix.lon))


class _Exit:
    """Consecutive fixes beyond the zone while the vehicle is at a stop."""

    __slots__ = ("first", "last", "max_distance", "n")

    def __init__(self, t: datetime) -> None:
        self.first = t
        self.last = t
        self.n = 0
        self.max_distance = 0.0

    def add(self, t: datetime, distance: float) -> None:
        self.last = t
        self.n += 1
        self.max_distance = max(self.max_distance, distance)


def _slow(fix: Fix, config: DetectorConfig) -> bool:
    # A missing speed leaves the decision to displacement from the anchor: deriving a speed
    # from consecutive jittery fixes would read metres of noise as motion.
    return fix.speed_mps is None or fix.speed_mps < config.rest_speed_mps


class ArrivalDetector:
    """Arrivals and departures of one vehicle at a set of stops (see the module docstring)."""

    def __init__(
        self, vehicle: str, stops: Iterable[Stop], config: DetectorConfig | None = None
    ) -> None:
        self.vehicle = vehicle
        self.config = config or DetectorConfig()
        self._zones = tuple(_Zone(s.id, s.lat, s.lon, s.radius_m) for s in stops)
        ids = [z.stop for z in self._zones]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate stop ids")
        self._buffer: list[tuple[datetime, int, Fix]] = []
        self._buffered_times: set[datetime] = set()
        self._order = itertools.count()
        self._newest: datetime | None = None
        self._processed: datetime | None = None
        self._rest: _Rest | None = None
        self._stray: _Rest | None = None
        self._strays = 0
        self._at: _Zone | None = None
        self._last_inside: datetime | None = None
        self._exit: _Exit | None = None
        self._last_event: datetime | None = None
        self._settled_until: datetime | None = None
        self._previous: Fix | None = None
        self._recent_speeds: deque[tuple[datetime, float]] = deque()
        self.late_fixes = 0
        self.duplicate_fixes = 0
        self.imprecise_fixes = 0

    @property
    def current_stop(self) -> str | None:
        """The stop the vehicle has arrived at and not yet left, as far as fixes processed."""
        return self._at.stop if self._at else None

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def processed_until(self) -> datetime | None:
        """Time of the last fix processed: a fix older than this would be dropped as late."""
        return self._processed

    def feed(self, fix: Fix) -> list[StopEvent]:
        """Take one fix; return the events it made certain (possibly about earlier fixes)."""
        if fix.hdop is not None and fix.hdop > self.config.max_hdop:
            self.imprecise_fixes += 1
            return []
        if fix.t in self._buffered_times or fix.t == self._processed:
            self.duplicate_fixes += 1
            return []
        if self._processed is not None and fix.t < self._processed:
            self.late_fixes += 1
            return []
        heapq.heappush(self._buffer, (fix.t, next(self._order), fix))
        self._buffered_times.add(fix.t)
        if self._newest is None or fix.t > self._newest:
            self._newest = fix.t
        events: list[StopEvent] = []
        window = self.config.reorder_window_s
        while self._buffer and (self._newest - self._buffer[0][0]).total_seconds() >= window:
            events.extend(self._process(self._pop()))
        return events

    def feed_many(self, fixes: Iterable[Fix]) -> list[StopEvent]:
        events: list[StopEvent] = []
        for fix in fixes:
            events.extend(self.feed(fix))
        return events

    def flush(self) -> list[StopEvent]:
        """Process every buffered fix now (end of a replay, or before re-deriving)."""
        events: list[StopEvent] = []
        while self._buffer:
            events.extend(self._process(self._pop()))
        return events

    def _pop(self) -> Fix:
        _, _, fix = heapq.heappop(self._buffer)
        self._buffered_times.discard(fix.t)
        return fix

    def _process(self, fix: Fix) -> list[StopEvent]:
        self._processed = fix.t
        self._track_rest(fix)
        self._previous = fix
        self._note_speed(fix)
        if self._at is not None:
            departure = self._check_departure(fix)
            if departure is None:
                return []
            events: list[StopEvent] = [departure]
            arrival = self._check_arrival()
            if arrival is not None:
                events.append(arrival)
            return events
        arrival = self._check_arrival()
        return [arrival] if arrival is not None else []

    def _near(self, fix: Fix) -> list[_Zone]:
        reach = self.config.zone_tolerance_m + self.config.rest_radius_m + _NEAR_MARGIN_M
        return [z for z in self._zones if z.distance_m(fix.lat, fix.lon) <= z.radius_m + reach]

    def _note_speed(self, fix: Fix) -> None:
        speeds, window = self._recent_speeds, self.config.speed_window_s
        if fix.speed_mps is not None:
            speeds.append((fix.t, fix.speed_mps))
        while speeds and (fix.t - speeds[0][0]).total_seconds() > window:
            speeds.popleft()

    def _approach(self, fix: Fix) -> _Approach | None:
        """The fix before a gap that ``fix`` ends, if the bus moved across the gap."""
        before, config = self._previous, self.config
        if before is None or (fix.t - before.t).total_seconds() < config.outage_gap_s:
            return None
        if haversine_m(before.lat, before.lon, fix.lat, fix.lon) <= config.rest_radius_m:
            return None
        moving = [v for _, v in self._recent_speeds if v >= config.rest_speed_mps]
        speed = sum(moving) / len(moving) if moving else before.speed_mps
        return _Approach(before.t, before.lat, before.lon, speed)

    def _new_rest(self, fix: Fix) -> _Rest | None:
        if not _slow(fix, self.config):
            return None
        return _Rest(fix, self._near(fix), self._approach(fix))

    def _track_rest(self, fix: Fix) -> None:
        config = self.config
        if self._rest is None:
            self._rest = self._new_rest(fix)
            return
        if self._rest.fits(fix, config):
            self._rest.add(fix)
            self._stray, self._strays = None, 0
            return
        # Stray fixes build a rest of their own, which takes over only if they persist.
        self._strays += 1
        if self._stray is not None and self._stray.fits(fix, config):
            self._stray.add(fix)
        else:
            self._stray = self._new_rest(fix)
        if self._strays >= config.rest_break_fixes:
            self._rest, self._stray, self._strays = self._stray, None, 0

    def _zone_of(self, rest: _Rest) -> _Zone | None:
        lat, lon = rest.anchor
        best: tuple[float, _Zone] | None = None
        for zone in rest.max_distance:
            d = zone.distance_m(lat, lon)
            if d <= zone.radius_m + self.config.zone_tolerance_m and (best is None or d < best[0]):
                best = (d, zone)
        return best[1] if best else None

    def _check_arrival(self) -> StopArrival | None:
        rest = self._rest
        if rest is None or rest.seconds < self.config.dwell_s:
            return None
        if self._last_event is not None and rest.first <= self._last_event:
            return None
        zone = self._zone_of(rest)
        if zone is None:
            return None
        self._at, self._exit = zone, None
        self._last_inside = rest.last
        self._settled_until = rest.last
        self._last_event = rest.first
        evidence = Evidence(rest.n, rest.max_distance[zone], rest.first, rest.last)
        if rest.approach is None:
            return StopArrival(self.vehicle, zone.stop, rest.first, evidence)
        earliest, estimate = self._estimate_arrival(rest.approach, rest)
        return StopArrival(self.vehicle, zone.stop, estimate, evidence, earliest, rest.first)

    def _estimate_arrival(self, approach: _Approach, rest: _Rest) -> tuple[datetime, datetime]:
        """(earliest, estimate) of when the bus came to rest at ``rest`` after ``approach``,
        the estimate within [earliest, the rest's first fix]."""
        config = self.config
        lat, lon = rest.anchor
        straight = haversine_m(approach.lat, approach.lon, lat, lon)
        # The anchor and the fix before the gap each carry some metres of error.
        shortest = max(0.0, straight - config.rest_radius_m)
        earliest = approach.t + timedelta(seconds=shortest / config.max_speed_mps)
        speed = max(approach.speed_mps or 0.0, config.min_approach_speed_mps)
        drive_s = straight * config.detour_factor / speed + speed / (2 * config.brake_mps2)
        estimate = approach.t + timedelta(seconds=drive_s)
        latest = rest.first
        if (latest - approach.t).total_seconds() > config.max_outage_s:
            estimate = latest
        earliest = min(earliest, latest)
        return earliest, min(max(estimate, earliest), latest)

    def _check_departure(self, fix: Fix) -> StopDeparture | None:
        zone, config = self._at, self.config
        assert zone is not None and self._last_inside is not None
        inside = zone.radius_m + config.zone_tolerance_m
        d = zone.distance_m(fix.lat, fix.lon)
        rest = self._rest
        if (
            rest is not None
            and rest.last == fix.t
            and rest.seconds >= config.dwell_s
            and self._zone_of(rest) is zone
        ):
            # Where the bus rested: a wait at a junction on the way out is too short for that.
            self._settled_until = fix.t
        if d <= inside:
            self._last_inside, self._exit = fix.t, None
            return None
        if d <= inside + config.exit_hysteresis_m:
            self._exit = None
            return None
        if self._exit is None:
            self._exit = _Exit(fix.t)
        exit_run = self._exit
        exit_run.add(fix.t, d)
        long_enough = (exit_run.last - exit_run.first).total_seconds() >= config.exit_time_s
        far_enough = (
            exit_run.n >= config.exit_confirm_fixes and d >= inside + config.exit_distance_m
        )
        if not (long_enough or far_enough):
            return None
        last_inside = self._last_inside
        departed = self._settled_until or last_inside
        evidence = Evidence(exit_run.n, exit_run.max_distance, exit_run.first, exit_run.last)
        self._at, self._exit, self._last_event = None, None, last_inside
        self._settled_until = None
        # A rest that began inside the zone belongs to the stay just ended.
        if self._rest is not None and self._rest.first <= last_inside:
            self._rest, self._stray, self._strays = self._stray, None, 0
        return StopDeparture(self.vehicle, zone.stop, departed, evidence)


def detect_stops(
    vehicle: str,
    stops: Iterable[Stop],
    fixes: Iterable[Fix],
    config: DetectorConfig | None = None,
) -> list[StopEvent]:
    """Events from a complete set of fixes in any order: sorted, de-duplicated, then run
    through a fresh detector. The re-derivation for late fixes and restarts."""
    detector = ArrivalDetector(
        vehicle, stops, replace(config or DetectorConfig(), reorder_window_s=0)
    )
    events = detector.feed_many(sorted(fixes, key=lambda f: f.t))
    return events + detector.flush()
