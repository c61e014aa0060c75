"""The patient car trips a visit of the bus avoided, and the balance with the bus's own
emissions.

For each visit: patients seen (an aggregate count entered by coordinators) × the round
trip to the nearest surgery from that stop × a car's emissions per km. The bus's
emissions, the avoided emissions and the net balance are kept as three figures, each with
its source: the car factor's boundary is its publisher's, not necessarily the bus's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ingest.footprint.emissions import CAR_TRIP_FACTOR_FILE, Emissions, load_toml_model
from ingest.itinerary import Stop


class CarTripFactor(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    date: date
    source: str = Field(min_length=1)
    url: str | None = None
    kgco2e_per_km: float = Field(gt=0, allow_inf_nan=False)


def load_car_trip_factor(path: Path = CAR_TRIP_FACTOR_FILE) -> CarTripFactor:
    return load_toml_model(path, CarTripFactor)


@dataclass(frozen=True)
class VisitAttendance:
    """How many patients a held visit saw, and how far they would otherwise drive."""

    visit_id: str
    stop_id: str
    patients_seen: int
    nearest_surgery_km: float

    def __post_init__(self) -> None:
        if self.patients_seen < 0:
            raise ValueError(f"visit {self.visit_id}: patients seen must be >= 0")
        if not (math.isfinite(self.nearest_surgery_km) and self.nearest_surgery_km >= 0):
            raise ValueError(f"visit {self.visit_id}: nearest surgery distance must be >= 0 km")

    @classmethod
    def at_stop(cls, visit_id: str, stop: Stop, patients_seen: int) -> VisitAttendance:
        return cls(visit_id, stop.id, patients_seen, stop.nearest_surgery_km)


@dataclass(frozen=True)
class AvoidedTrips:
    visit_id: str
    patients_seen: int
    round_trip_km: float
    car_km: float
    kgco2e: float
    factor_id: str
    factor_version: str


def avoided_trips(visit: VisitAttendance, factor: CarTripFactor) -> AvoidedTrips:
    round_trip_km = 2 * visit.nearest_surgery_km
    car_km = visit.patients_seen * round_trip_km
    return AvoidedTrips(
        visit_id=visit.visit_id,
        patients_seen=visit.patients_seen,
        round_trip_km=round_trip_km,
        car_km=car_km,
        kgco2e=car_km * factor.kgco2e_per_km,
        factor_id=factor.id,
        factor_version=factor.version,
    )


@dataclass(frozen=True)
class FootprintBalance:
    """The bus's well-to-wheel emissions and the car trips it avoided, over one period."""

    bus: Emissions
    avoided_kgco2e: float
    avoided_car_km: float
    visits: int
    patients_seen: int
    car_factor_id: str
    car_factor_version: str

    @property
    def net_kgco2e(self) -> float:
        """Bus well-to-wheel minus avoided: below zero, the bus saved more than it emitted."""
        return self.bus.wtw_kgco2e - self.avoided_kgco2e


def footprint_balance(
    bus: Emissions, avoided: Iterable[AvoidedTrips], factor: CarTripFactor
) -> FootprintBalance:
    trips = list(avoided)
    for t in trips:
        if (t.factor_id, t.factor_version) != (factor.id, factor.version):
            raise ValueError(
                f"visit {t.visit_id}: avoided trips computed with {t.factor_id} "
                f"v{t.factor_version}, not {factor.id} v{factor.version}"
            )
    return FootprintBalance(
        bus=bus,
        avoided_kgco2e=math.fsum(t.kgco2e for t in trips),
        avoided_car_km=math.fsum(t.car_km for t in trips),
        visits=len(trips),
        patients_seen=sum(t.patients_seen for t in trips),
        car_factor_id=factor.id,
        car_factor_version=factor.version,
    )
