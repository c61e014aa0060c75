"""One vehicle's footprint over one local day: distance, energy and CO₂e together.

Fuel is the model's (consumption × distance, and idling) unless the engine's own readings
(OBD-II) cover the day's driving: then CO₂e is that of the fuel measured, and the day says
so (``fuel_source``); the model's figures are kept beside it.

Auxiliary energy is reported but not turned into CO₂e: the battery is charged by the
alternator (already in the fuel), the sun, or shore power, and which is not known here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from ingest.footprint.distance import FilteredTrack
from ingest.footprint.emissions import EmissionIntensity, Emissions, FactorSet, emissions_of
from ingest.footprint.emissions import per_km as emissions_per_km
from ingest.footprint.energy import (
    DEFAULT_IDLING,
    EnergyAmount,
    Idling,
    IdlingConfig,
    Interval,
    MeasuredFuel,
    TractionProfile,
    idling,
    traction_energy,
)
from ingest.local_days import LocalDay

# The share of the day's moving fixes the engine's readings must cover for its fuel to
# stand for the day's: below it, an adapter unplugged part of the day would under-count.
MEASURED_COVERAGE: Final = 0.95
# A fix moving faster than this (m/s) is driving.
MOVING_MPS: Final = 2.0


@dataclass(frozen=True)
class DayFootprint:
    vehicle_id: str
    day: LocalDay
    distance_km: float
    traction: EnergyAmount
    idling: Idling
    emissions: Emissions
    per_km: EmissionIntensity | None
    fuel_source: Literal["model", "measured"] = "model"
    measured_fuel_l: float | None = None
    # Share of the day's moving fixes within the engine's readings (None: no readings).
    measured_coverage: float | None = None

    @property
    def energy(self) -> tuple[EnergyAmount, ...]:
        return (self.traction, self.idling.fuel)


def _within(intervals: Iterable[Interval], day: LocalDay) -> list[Interval]:
    return [c for i in intervals if (c := i.clip(day.start, day.end)) is not None]


def day_footprint(
    vehicle_id: str,
    day: LocalDay,
    track: FilteredTrack,
    profile: TractionProfile,
    factors: FactorSet,
    *,
    rest: Iterable[Interval] = (),
    engine_on: Iterable[Interval] = (),
    idling_config: IdlingConfig = DEFAULT_IDLING,
    measured: MeasuredFuel | None = None,
) -> DayFootprint:
    distance_km = track.distance_between_m(day.start, day.end) / 1000.0
    traction = traction_energy(distance_km, profile)
    idle = idling(_within(rest, day), _within(engine_on, day), profile, idling_config)
    emissions = emissions_of((traction, idle.fuel), factors)
    source: Literal["model", "measured"] = "model"
    coverage: float | None = None
    if measured is not None and measured.covered and profile.carrier != "electricity":
        moving = [
            f
            for f in track.fixes
            if day.start <= f.t < day.end and (f.speed_mps or 0.0) >= MOVING_MPS
        ]
        inside = sum(1 for f in moving if measured.covers(f.t))
        coverage = inside / len(moving) if moving else 1.0
        if coverage >= MEASURED_COVERAGE:
            source = "measured"
            fuel = EnergyAmount(profile.carrier, measured.litres, "measured")
            emissions = emissions_of((fuel,), factors)
    return DayFootprint(
        vehicle_id=vehicle_id,
        day=day,
        distance_km=distance_km,
        traction=traction,
        idling=idle,
        emissions=emissions,
        per_km=emissions_per_km(emissions, distance_km),
        fuel_source=source,
        measured_fuel_l=None if measured is None or not measured.covered else measured.litres,
        measured_coverage=coverage,
    )
