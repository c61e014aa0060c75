"""One vehicle's footprint over one local day: distance, energy and CO₂e together.

Auxiliary energy is reported but not turned into CO₂e: the battery is charged by the
alternator (already in the fuel), the sun, or shore power, and which is not known here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ingest.footprint.distance import FilteredTrack
from ingest.footprint.emissions import EmissionIntensity, Emissions, FactorSet, emissions_of
from ingest.footprint.emissions import per_km as emissions_per_km
from ingest.footprint.energy import (
    DEFAULT_IDLING,
    EnergyAmount,
    Idling,
    IdlingConfig,
    Interval,
    TractionProfile,
    idling,
    traction_energy,
)
from ingest.local_days import LocalDay


@dataclass(frozen=True)
class DayFootprint:
    vehicle_id: str
    day: LocalDay
    distance_km: float
    traction: EnergyAmount
    idling: Idling
    emissions: Emissions
    per_km: EmissionIntensity | None

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
) -> DayFootprint:
    distance_km = track.distance_between_m(day.start, day.end) / 1000.0
    traction = traction_energy(distance_km, profile)
    idle = idling(_within(rest, day), _within(engine_on, day), profile, idling_config)
    emissions = emissions_of((traction, idle.fuel), factors)
    return DayFootprint(
        vehicle_id=vehicle_id,
        day=day,
        distance_km=distance_km,
        traction=traction,
        idling=idle,
        emissions=emissions,
        per_km=emissions_per_km(emissions, distance_km),
    )
