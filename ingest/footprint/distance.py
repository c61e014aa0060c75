"""Distance driven, from GPS fixes cleaned of what a receiver gets wrong.

A fix is dropped when it is invalid (no fix), at (0, 0), a second fix for the same
instant, later than the time of receipt allows, or an impossible jump (the speed implied
from the last kept fix is over a bound). A jump is told from a real move by what follows:
a single spike is contradicted by the next fix, whereas a run of fixes that agree with one
another but not with the past is a real relocation (or proves the past fix wrong), so the
run is kept and the track restarts there, without counting the jump itself as distance.

Distance is counted in steps of at least ``min_step_m`` from the last counted point, so
that the few metres a parked receiver wanders do not add up to kilometres over a day.
Each step is attributed to the time of the fix that ends it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from ingest.geo import haversine_m
from ingest.local_days import local_date, require_aware
from protocol.wire import GpsSample

RejectReason = Literal["invalid", "zero", "duplicate", "future", "jump"]


@dataclass(frozen=True)
class FixFilterConfig:
    # 50 m/s = 180 km/h: beyond any road speed of a bus, well short of typical spikes.
    max_speed_mps: float = 50.0
    # Allowance for fix noise, so two close fixes a fraction of a second apart are not
    # taken for a jump at high fix rates.
    fix_tolerance_m: float = 20.0
    # This many fixes agreeing with each other, but not with the track, make a relocation.
    confirm_fixes: int = 3
    min_step_m: float = 10.0
    max_future_skew: timedelta = timedelta(minutes=5)
    # None: HDOP is not used to reject fixes.
    max_hdop: float | None = None

    def __post_init__(self) -> None:
        if not self.max_speed_mps > 0:
            raise ValueError(f"max_speed_mps must be > 0, got {self.max_speed_mps}")
        if self.fix_tolerance_m < 0 or self.min_step_m < 0:
            raise ValueError("fix_tolerance_m and min_step_m must be >= 0")
        if self.confirm_fixes < 1:
            raise ValueError(f"confirm_fixes must be >= 1, got {self.confirm_fixes}")
        if self.max_future_skew < timedelta(0):
            raise ValueError("max_future_skew must be >= 0")
        if self.max_hdop is not None and not self.max_hdop > 0:
            raise ValueError(f"max_hdop must be > 0, got {self.max_hdop}")


@dataclass(frozen=True)
class RejectedFix:
    fix: GpsSample
    reason: RejectReason


@dataclass(frozen=True)
class Step:
    """A counted move between two kept fixes of one segment."""

    start: datetime
    end: datetime
    metres: float


@dataclass(frozen=True)
class Trip:
    """A named time window of one vehicle, e.g. from leaving one stop to reaching the next."""

    id: str
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if require_aware(self.end, "trip end") < require_aware(self.start, "trip start"):
            raise ValueError(f"trip {self.id}: end {self.end} is before start {self.start}")


@dataclass(frozen=True)
class FilteredTrack:
    """The fixes of one vehicle, in time order, with what was dropped and why."""

    fixes: tuple[GpsSample, ...]
    rejected: tuple[RejectedFix, ...]
    steps: tuple[Step, ...]
    # Where the track restarted after a confirmed relocation; no distance is counted
    # across a restart.
    restarts: tuple[datetime, ...]

    @property
    def distance_m(self) -> float:
        return math.fsum(s.metres for s in self.steps)

    @property
    def rejected_by_reason(self) -> dict[RejectReason, int]:
        return dict(Counter(r.reason for r in self.rejected))

    def distance_between_m(self, start: datetime, end: datetime) -> float:
        """Metres of the steps ending in ``[start, end)``."""
        start, end = require_aware(start, "start"), require_aware(end, "end")
        return math.fsum(s.metres for s in self.steps if start <= s.end < end)

    def distance_by_day_m(self, zone: ZoneInfo) -> dict[date, float]:
        """Metres per local day; days without a counted step are absent."""
        per_day: dict[date, list[float]] = {}
        for s in self.steps:
            per_day.setdefault(local_date(s.end, zone), []).append(s.metres)
        return {d: math.fsum(m) for d, m in sorted(per_day.items())}

    def distance_by_trip_m(self, trips: Iterable[Trip]) -> dict[str, float]:
        return {t.id: self.distance_between_m(t.start, t.end) for t in trips}


def _static_reason(
    fix: GpsSample, config: FixFilterConfig, now: datetime | None
) -> RejectReason | None:
    if fix.fix_mode == 1 or fix.quality == 0:
        return "invalid"
    if config.max_hdop is not None and fix.hdop is not None and fix.hdop > config.max_hdop:
        return "invalid"
    if fix.lat == 0.0 and fix.lon == 0.0:
        return "zero"
    if now is not None and fix.t > now + config.max_future_skew:
        return "future"
    return None


def _distance(a: GpsSample, b: GpsSample) -> float:
    return haversine_m(a.lat, a.lon, b.lat, b.lon)


def _reachable(a: GpsSample, b: GpsSample, config: FixFilterConfig) -> bool:
    seconds = (b.t - a.t).total_seconds()
    return _distance(a, b) <= config.max_speed_mps * seconds + config.fix_tolerance_m


def filter_fixes(
    fixes: Iterable[GpsSample],
    config: FixFilterConfig = FixFilterConfig(),
    *,
    now: datetime | None = None,
) -> FilteredTrack:
    """Clean one vehicle's fixes (any order) and count the distance they describe.

    ``now`` is the time of receipt, for the future-fix rule; without it no fix is
    judged to be in the future.
    """
    if now is not None:
        now = require_aware(now, "now")
    rejected: list[RejectedFix] = []
    candidates: list[GpsSample] = []
    seen: set[datetime] = set()
    for fix in sorted(fixes, key=lambda f: f.t):
        reason = _static_reason(fix, config, now)
        if reason is None and fix.t in seen:
            reason = "duplicate"
        if reason is not None:
            rejected.append(RejectedFix(fix, reason))
            continue
        seen.add(fix.t)
        candidates.append(fix)

    def drop(run: Sequence[GpsSample]) -> None:
        rejected.extend(RejectedFix(f, "jump") for f in run)

    segments: list[list[GpsSample]] = []
    current: list[GpsSample] = []
    pending: list[GpsSample] = []
    for fix in candidates:
        if not current or _reachable(current[-1], fix, config):
            drop(pending)
            pending = []
            current.append(fix)
            continue
        if pending and not _reachable(pending[-1], fix, config):
            drop(pending)
            pending = []
        pending.append(fix)
        if len(pending) >= config.confirm_fixes:
            # A short run cut off on both sides is itself the spike (e.g. a bad first fix).
            if len(current) < config.confirm_fixes:
                drop(current)
            else:
                segments.append(current)
            current, pending = pending, []
    drop(pending)
    if current:
        segments.append(current)

    steps: list[Step] = []
    for segment in segments:
        anchor = segment[0]
        for fix in segment[1:]:
            metres = _distance(anchor, fix)
            if metres > 0 and metres >= config.min_step_m:
                steps.append(Step(anchor.t, fix.t, metres))
                anchor = fix

    rejected.sort(key=lambda r: r.fix.t)
    return FilteredTrack(
        fixes=tuple(f for segment in segments for f in segment),
        rejected=tuple(rejected),
        steps=tuple(steps),
        restarts=tuple(segment[0].t for segment in segments[1:]),
    )
