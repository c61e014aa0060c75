"""A vehicle-day's footprint as stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from ingest.footprint.emissions import FactorSetRef
from ingest.footprint.energy import Carrier


@dataclass(frozen=True)
class StoredFootprintDay:
    vehicle: str
    day: date
    zone: str
    distance_km: float
    fixes_kept: int
    fixes_rejected: int
    traction_carrier: Carrier
    traction_quantity: float
    idling_measured: bool
    idling: timedelta
    idling_quantity: float
    idling_rate_per_h: float
    idling_source: str
    aux_drawn_kwh: float
    aux_charged_kwh: float
    aux_integrated: timedelta
    aux_gap: timedelta
    solar_kwh: float | None
    solar_method: str | None
    ttw_kgco2e: float
    wtt_kgco2e: float
    factor_set: FactorSetRef
    complete: bool
    # "measured": the CO₂e is that of the fuel the engine reported (OBD-II).
    fuel_source: str = "model"
    measured_fuel_l: float | None = None
    measured_coverage: float | None = None

    @property
    def wtw_kgco2e(self) -> float:
        return self.ttw_kgco2e + self.wtt_kgco2e
