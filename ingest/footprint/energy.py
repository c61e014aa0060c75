"""Energy used by a vehicle: traction, idling at rest, and the auxiliary battery.

Traction energy is the configured consumption times the distance (litres for diesel and
petrol, kWh for electric traction). Auxiliary energy and solar yield are integrated from
the battery monitor's readings; a stretch between two readings further apart than
``max_gap`` is not integrated but reported as a gap, since nothing says what the load was.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from ingest.geo import haversine_m
from ingest.itinerary import Vehicle
from ingest.local_days import require_aware
from protocol.wire import EnergySample, GpsSample

Carrier = Literal["diesel", "petrol", "electricity"]
EnergyUnit = Literal["L", "kWh"]
EnergyUse = Literal["traction", "idling", "measured"]
Traction = Literal["diesel", "petrol", "electric"]

CARRIER_UNIT: Final[dict[Carrier, EnergyUnit]] = {
    "diesel": "L",
    "petrol": "L",
    "electricity": "kWh",
}
TRACTION_CARRIER: Final[dict[Traction, Carrier]] = {
    "diesel": "diesel",
    "petrol": "petrol",
    "electric": "electricity",
}
_JOULES_PER_KWH: Final = 3.6e6


class EnergyConfigError(ValueError):
    """A vehicle or energy setting that cannot be used; the message says which."""


@dataclass(frozen=True)
class EnergyAmount:
    """A quantity of one energy carrier, in its own unit (litres or kWh)."""

    carrier: Carrier
    quantity: float
    use: EnergyUse

    def __post_init__(self) -> None:
        if not (math.isfinite(self.quantity) and self.quantity >= 0):
            raise ValueError(
                f"{self.use} {self.carrier}: quantity must be >= 0, got {self.quantity}"
            )

    @property
    def unit(self) -> EnergyUnit:
        return CARRIER_UNIT[self.carrier]


@dataclass(frozen=True)
class TractionProfile:
    """How much energy a vehicle's traction needs per 100 km, in the carrier's unit."""

    traction: Traction
    per_100km: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.per_100km) and self.per_100km > 0):
            raise EnergyConfigError(f"consumption per 100 km must be > 0, got {self.per_100km}")

    @property
    def carrier(self) -> Carrier:
        return TRACTION_CARRIER[self.traction]

    @classmethod
    def of_vehicle(cls, vehicle: Vehicle) -> TractionProfile:
        wanted = "kwh_per_100km" if vehicle.traction == "electric" else "fuel_l_per_100km"
        per_100km = getattr(vehicle, wanted)
        if per_100km is None:
            raise EnergyConfigError(
                f"vehicle {vehicle.id}: {vehicle.traction} traction needs {wanted} "
                "in the fleet file"
            )
        return cls(traction=vehicle.traction, per_100km=float(per_100km))


def traction_energy(distance_km: float, profile: TractionProfile) -> EnergyAmount:
    if not (math.isfinite(distance_km) and distance_km >= 0):
        raise ValueError(f"distance must be >= 0 km, got {distance_km}")
    return EnergyAmount(profile.carrier, distance_km * profile.per_100km / 100.0, "traction")


# --- intervals, rest and idling ---------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if require_aware(self.end, "end") < require_aware(self.start, "start"):
            raise ValueError(f"interval end {self.end} is before its start {self.start}")

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def clip(self, start: datetime, end: datetime) -> Interval | None:
        a, b = max(self.start, start), min(self.end, end)
        return Interval(a, b) if a < b else None


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for iv in sorted(intervals, key=lambda i: i.start):
        if merged and iv.start <= merged[-1].end:
            if iv.end > merged[-1].end:
                merged[-1] = Interval(merged[-1].start, iv.end)
        else:
            merged.append(iv)
    return merged


def intersect(a: Iterable[Interval], b: Iterable[Interval]) -> list[Interval]:
    """The times covered by both ``a`` and ``b``."""
    out: list[Interval] = []
    left, right = _merge(a), _merge(b)
    i = j = 0
    while i < len(left) and j < len(right):
        both = left[i].clip(right[j].start, right[j].end)
        if both is not None:
            out.append(both)
        if left[i].end <= right[j].end:
            i += 1
        else:
            j += 1
    return out


def rest_intervals(
    fixes: Sequence[GpsSample],
    *,
    rest_speed_mps: float = 0.5,
    max_gap: timedelta = timedelta(minutes=2),
) -> list[Interval]:
    """Times the vehicle stood still, between consecutive (already filtered) fixes.

    A pair of fixes is at rest when both report a speed (from the receiver's Doppler, which
    stays near zero at rest however the position wanders) at or under ``rest_speed_mps``;
    a fix without a reported speed uses the speed implied by the pair's displacement.
    Pairs further apart than ``max_gap`` say nothing about rest.
    """
    ordered = sorted(fixes, key=lambda f: f.t)
    pieces: list[Interval] = []
    for a, b in itertools.pairwise(ordered):
        seconds = (b.t - a.t).total_seconds()
        if seconds <= 0 or b.t - a.t > max_gap:
            continue
        implied = haversine_m(a.lat, a.lon, b.lat, b.lon) / seconds
        speed_a = a.speed_mps if a.speed_mps is not None else implied
        speed_b = b.speed_mps if b.speed_mps is not None else implied
        if speed_a <= rest_speed_mps and speed_b <= rest_speed_mps:
            pieces.append(Interval(a.t, b.t))
    return _merge(pieces)


@dataclass(frozen=True)
class EngineFlag:
    """The engine (or the traction system) was switched on or off at ``t``."""

    t: datetime
    engine_on: bool


def engine_on_intervals(flags: Iterable[EngineFlag], *, until: datetime) -> list[Interval]:
    """From on/off flags; an engine still on at the last flag runs until ``until``."""
    until = require_aware(until, "until")
    out: list[Interval] = []
    on_since: datetime | None = None
    for flag in sorted(flags, key=lambda f: f.t):
        t = require_aware(flag.t, "engine flag")
        if flag.engine_on and on_since is None:
            on_since = t
        elif not flag.engine_on and on_since is not None:
            out.append(Interval(on_since, t))
            on_since = None
    if on_since is not None and on_since < until:
        out.append(Interval(on_since, until))
    return out


# Not measured on these vehicles: a round figure for a light-duty diesel idling; replace
# it with the vehicle's own figure where known.
DEFAULT_IDLE_SOURCE: Final = "default assumption 0.8 L/h for a light-duty diesel at idle"


class IdlingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fuel_l_per_h: float = Field(default=0.8, ge=0)
    source: str = Field(default=DEFAULT_IDLE_SOURCE, min_length=1)


DEFAULT_IDLING: Final = IdlingConfig()


@dataclass(frozen=True)
class Idling:
    """Time at rest with the engine on, and what it burnt."""

    intervals: tuple[Interval, ...]
    fuel: EnergyAmount
    rate_per_h: float
    source: str

    @property
    def duration(self) -> timedelta:
        return sum((i.duration for i in self.intervals), timedelta(0))


def idling(
    rest: Iterable[Interval],
    engine_on: Iterable[Interval],
    profile: TractionProfile,
    config: IdlingConfig = DEFAULT_IDLING,
) -> Idling:
    """Idling = at rest ∩ engine on. Electric traction burns nothing at rest."""
    intervals = tuple(intersect(rest, engine_on))
    hours = sum(i.duration.total_seconds() for i in intervals) / 3600.0
    if profile.traction == "electric":
        return Idling(
            intervals=intervals,
            fuel=EnergyAmount("electricity", 0.0, "idling"),
            rate_per_h=0.0,
            source="electric traction: no fuel burnt at rest",
        )
    return Idling(
        intervals=intervals,
        fuel=EnergyAmount(profile.carrier, hours * config.fuel_l_per_h, "idling"),
        rate_per_h=config.fuel_l_per_h,
        source=config.source,
    )


# --- auxiliary battery and solar ---------------------------------------------------------


@dataclass(frozen=True)
class PowerIntegral:
    """Energy from integrating a power reading over time (trapezoids between readings)."""

    # Energy with the power positive (into the battery) and negative (out of it), both >= 0.
    positive_kwh: float
    negative_kwh: float
    integrated: timedelta
    gaps: tuple[Interval, ...] = field(default=())

    @property
    def gap_time(self) -> timedelta:
        return sum((g.duration for g in self.gaps), timedelta(0))


def _signed_areas(p0: float, p1: float, seconds: float) -> tuple[float, float]:
    """Positive and negative areas (J) under the line from p0 to p1 W over ``seconds``."""
    if p0 >= 0 and p1 >= 0:
        return (p0 + p1) / 2 * seconds, 0.0
    if p0 <= 0 and p1 <= 0:
        return 0.0, -(p0 + p1) / 2 * seconds
    crossing = p0 / (p0 - p1)
    first, second = p0 * crossing * seconds / 2, p1 * (1 - crossing) * seconds / 2
    return (first, -second) if p0 > 0 else (second, -first)


def integrate_power(
    readings: Iterable[tuple[datetime, float]],
    *,
    max_gap: timedelta,
    start: datetime | None = None,
    end: datetime | None = None,
) -> PowerIntegral:
    """Integrate ``(t, watts)`` readings, linear between readings, within ``[start, end)``.

    With a window, the time before the first and after the last reading in it is a gap too.
    A repeated instant keeps its first reading.
    """
    if max_gap <= timedelta(0):
        raise ValueError(f"max_gap must be > 0, got {max_gap}")
    points: list[tuple[datetime, float]] = []
    for t, watts in sorted(readings, key=lambda r: r[0]):
        if not math.isfinite(watts):
            raise ValueError(f"power at {t.isoformat()} is not a number: {watts}")
        if points and points[-1][0] == t:
            continue
        points.append((require_aware(t, "reading"), watts))
    lo = require_aware(start, "start") if start is not None else None
    hi = require_aware(end, "end") if end is not None else None
    if lo is not None and hi is not None and hi < lo:
        raise ValueError(f"window end {hi} is before its start {lo}")

    positive = negative = 0.0
    integrated = timedelta(0)
    gaps: list[Interval] = []
    for (t0, p0), (t1, p1) in itertools.pairwise(points):
        a = t0 if lo is None else max(t0, lo)
        b = t1 if hi is None else min(t1, hi)
        if a >= b:
            continue
        if t1 - t0 > max_gap:
            gaps.append(Interval(a, b))
            continue
        span = (t1 - t0).total_seconds()
        pa = p0 + (p1 - p0) * (a - t0).total_seconds() / span
        pb = p0 + (p1 - p0) * (b - t0).total_seconds() / span
        pos, neg = _signed_areas(pa, pb, (b - a).total_seconds())
        positive += pos
        negative += neg
        integrated += b - a
    if lo is not None and hi is not None:
        first = points[0][0] if points else hi
        last = points[-1][0] if points else hi
        if not points or first >= hi or last <= lo:
            gaps = [Interval(lo, hi)] if lo < hi else []
        else:
            if first > lo:
                gaps.insert(0, Interval(lo, first))
            if last < hi:
                gaps.append(Interval(last, hi))
    return PowerIntegral(
        positive_kwh=positive / _JOULES_PER_KWH,
        negative_kwh=negative / _JOULES_PER_KWH,
        integrated=integrated,
        gaps=tuple(gaps),
    )


def battery_power_w(sample: EnergySample) -> float | None:
    """Battery power, positive when charging (VE.Direct's sign); V×I when P is missing."""
    if sample.power_w is not None:
        return sample.power_w
    if sample.voltage_v is not None and sample.current_a is not None:
        return sample.voltage_v * sample.current_a
    return None


@dataclass(frozen=True)
class AuxiliaryEnergy:
    """The auxiliary battery's energy: drawn by the equipment, and charged into it."""

    drawn_kwh: float
    charged_kwh: float
    integrated: timedelta
    gaps: tuple[Interval, ...]

    @property
    def net_kwh(self) -> float:
        """Charged minus drawn: negative when the battery ran down."""
        return self.charged_kwh - self.drawn_kwh


def auxiliary_energy(
    samples: Iterable[EnergySample],
    *,
    max_gap: timedelta = timedelta(minutes=5),
    start: datetime | None = None,
    end: datetime | None = None,
) -> AuxiliaryEnergy:
    readings = [(s.t, p) for s in samples if (p := battery_power_w(s)) is not None]
    result = integrate_power(readings, max_gap=max_gap, start=start, end=end)
    return AuxiliaryEnergy(
        drawn_kwh=result.negative_kwh,
        charged_kwh=result.positive_kwh,
        integrated=result.integrated,
        gaps=result.gaps,
    )


@dataclass(frozen=True)
class SolarYield:
    kwh: float
    integrated: timedelta
    gaps: tuple[Interval, ...]


def solar_yield(
    samples: Iterable[EnergySample],
    *,
    max_gap: timedelta = timedelta(minutes=5),
    start: datetime | None = None,
    end: datetime | None = None,
) -> SolarYield:
    """Solar energy from the charger's panel power readings."""
    readings = [(s.t, s.pv_power_w) for s in samples if s.pv_power_w is not None]
    result = integrate_power(readings, max_gap=max_gap, start=start, end=end)
    return SolarYield(kwh=result.positive_kwh, integrated=result.integrated, gaps=result.gaps)


def solar_yield_from_counter(samples: Iterable[EnergySample]) -> float:
    """kWh from the charger's own "yield today" counter, which restarts from 0 each day.

    The charger integrates its own power far more often than it is sampled here, so the
    counter is the better figure where present. The first reading is the baseline; a drop
    is a restart, after which the new value is all new yield.
    """
    ordered = sorted(samples, key=lambda s: s.t)
    values = [s.yield_today_kwh for s in ordered if s.yield_today_kwh is not None]
    total = 0.0
    for before, after in itertools.pairwise(values):
        total += after - before if after >= before else after
    return total


# --- fuel measured by the engine (OBD-II) -------------------------------------------------


@dataclass(frozen=True)
class MeasuredFuel:
    """What the engine said it burnt: litres integrated over the stretches where its
    readings follow each other closely, and those stretches."""

    litres: float
    covered: tuple[Interval, ...]

    def covers(self, t: datetime) -> bool:
        return any(i.start <= t <= i.end for i in self.covered)


def measured_fuel(
    readings: Sequence[tuple[datetime, float]],
    *,
    max_gap: timedelta,
    start: datetime,
    end: datetime,
) -> MeasuredFuel:
    """Fuel rates (L/h) in time order integrated by trapezoids over ``[start, end)``;
    two readings further apart than ``max_gap`` are a gap (adapter unplugged, engine
    off), not integrated."""
    litres = 0.0
    covered: list[Interval] = []
    for (t0, r0), (t1, r1) in itertools.pairwise(readings):
        if t1 <= t0 or t1 - t0 > max_gap:
            continue
        piece = Interval(t0, t1).clip(start, end)
        if piece is None:
            continue
        span = (t1 - t0).total_seconds()
        # The rate is taken as linear between the two readings.
        at_start = r0 + (r1 - r0) * (piece.start - t0).total_seconds() / span
        at_end = r0 + (r1 - r0) * (piece.end - t0).total_seconds() / span
        litres += (at_start + at_end) / 2 * piece.duration.total_seconds() / 3600
        if covered and covered[-1].end >= piece.start:
            covered[-1] = Interval(covered[-1].start, max(covered[-1].end, piece.end))
        else:
            covered.append(piece)
    return MeasuredFuel(litres, tuple(covered))
