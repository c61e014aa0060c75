"""The punctuality section of the ingest's settings (``[punctuality]`` in ingest.toml)."""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ingest.punctuality.classification import PunctualityThresholds
from ingest.punctuality.detector import DetectorConfig

KMH_PER_MPS = 3.6


class DetectorSettings(BaseModel):
    """How arrivals and departures are told from GPS fixes (see the detector)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    zone_tolerance_m: float = Field(default=50.0, ge=0)
    rest_speed_mps: float = Field(default=1.0, gt=0)
    rest_radius_m: float = Field(default=25.0, gt=0)
    dwell_s: float = Field(default=120.0, gt=0)
    exit_time_s: float = Field(default=60.0, ge=0)
    exit_distance_m: float = Field(default=300.0, ge=0)
    max_hdop: float = Field(default=10.0, gt=0)
    reorder_window_s: float = Field(default=30.0, ge=0)

    def config(self) -> DetectorConfig:
        return DetectorConfig(**self.model_dump())


class PunctualitySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    on_time_from_min: float = Field(default=-5.0, le=0, description="earliest on-time delay")
    on_time_until_min: float = Field(default=5.0, ge=0, description="latest on-time delay")
    match_before_min: float = Field(
        default=120.0, ge=0, description="an arrival this long before the visit still counts"
    )
    match_after_departure_min: float = Field(
        default=0.0, ge=0, description="and this long after its scheduled departure"
    )
    # Measured on the simulated buses (80 km/h departmental roads, 50 and 30 in the
    # communes): 56-59 km/h as the crow flies on free roads, roads 2-14 % longer than the
    # straight line. 65 km/h on roads 1.2 times the straight line (54 km/h as the crow
    # flies) stays a little on the slow side until the bus's own trips are learnt.
    default_speed_kmh: float = Field(
        default=65.0, gt=0, le=130, description="ETA speed until the bus's trips are learnt"
    )
    detour_factor: float = Field(default=1.2, ge=1, le=3, description="road / crow-fly distance")
    eta_visits: int = Field(default=3, ge=1, le=20, description="ETAs for this many next visits")
    eta_every_s: float = Field(default=30.0, ge=0, description="recompute ETAs this often")
    horizon_days: int = Field(
        default=14, ge=0, le=366, description="visits are listed this many days ahead"
    )
    detector: DetectorSettings = Field(default_factory=DetectorSettings)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        self.thresholds()
        self.detector.config()
        return self

    def thresholds(self) -> PunctualityThresholds:
        return PunctualityThresholds(
            on_time_from=timedelta(minutes=self.on_time_from_min),
            on_time_until=timedelta(minutes=self.on_time_until_min),
            match_before=timedelta(minutes=self.match_before_min),
            match_after_departure=timedelta(minutes=self.match_after_departure_min),
        )

    @property
    def default_speed_mps(self) -> float:
        return self.default_speed_kmh / KMH_PER_MPS
