"""Settings of the ingest process. Env vars: ``MEDICOBUS_INGEST_*``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Self

import sqlalchemy as sa
from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_settings import SettingsConfigDict

from firmware_config.agent import BrokerConfig
from firmware_config.loader import TomlSettings
from ingest.alerts.notify_settings import NotificationSettings
from ingest.coldchain.rules import ColdChainConfig
from ingest.footprint.emissions import bundled_factor_sets
from ingest.footprint.energy import DEFAULT_IDLE_SOURCE, IdlingConfig
from ingest.punctuality.config import PunctualitySettings
from ingest.sql_dialects import check_database_url
from ingest.timeseries import InfluxSettings


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FridgeRules(_Section):
    """A fridge's range and the durations of its alarms, in the units people write them in.

    The defaults are a 2–8 °C vaccine fridge watched like a WHO PQS 30-day logger, plus
    the operator's own early warning.
    """

    low_c: float = 2.0
    high_c: float = 8.0
    heat_alarm_above_c: float = 8.0
    heat_alarm_after_h: float = Field(default=10.0, gt=0)
    freeze_alarm_at_or_below_c: float = -0.5
    freeze_alarm_after_min: float = Field(default=60.0, gt=0)
    early_warning_above_c: float = 8.0
    early_warning_after_min: float = Field(default=30.0, gt=0)
    excursion_after_min: float = Field(default=15.0, ge=0)
    max_sample_spacing_min: float = Field(
        default=15.0, gt=0, description="readings further apart leave a gap (no data)"
    )

    @model_validator(mode="after")
    def _ordered_range(self) -> Self:
        if not self.low_c < self.high_c:
            raise ValueError(f"low_c {self.low_c} must be below high_c {self.high_c}")
        return self

    def config(self) -> ColdChainConfig:
        return ColdChainConfig(
            low_c=self.low_c,
            high_c=self.high_c,
            max_sample_spacing=timedelta(minutes=self.max_sample_spacing_min),
            excursion_after=timedelta(minutes=self.excursion_after_min),
            heat_alarm_above_c=self.heat_alarm_above_c,
            heat_alarm_after=timedelta(hours=self.heat_alarm_after_h),
            freeze_alarm_at_or_below_c=self.freeze_alarm_at_or_below_c,
            freeze_alarm_after=timedelta(minutes=self.freeze_alarm_after_min),
            early_warning_above_c=self.early_warning_above_c,
            early_warning_after=timedelta(minutes=self.early_warning_after_min),
        )

    def overridden_by(self, override: FridgeRules) -> FridgeRules:
        """These rules with the values ``override`` sets explicitly (a vehicle's own)."""
        merged = {**self.model_dump(), **override.model_dump(exclude_unset=True)}
        return FridgeRules.model_validate(merged)


class FootprintSettings(_Section):
    factor_set: str = Field(
        default="base-empreinte",
        description="emission factors: base-empreinte (ADEME) or arrete-2017 (GES transport)",
    )
    idling_fuel_l_per_h: float = Field(default=0.8, ge=0)
    idling_source: str = Field(default=DEFAULT_IDLE_SOURCE, min_length=1)
    car_trip_factor_file: Path | None = Field(
        default=None,
        description="kgCO2e per km of a patient's car trip (TOML); default: the bundled one",
    )

    @field_validator("factor_set")
    @classmethod
    def _bundled(cls, value: str) -> str:
        known = bundled_factor_sets()
        if value not in known:
            raise ValueError(f"unknown factor set {value!r}; choose one of {', '.join(known)}")
        return value

    def idling(self) -> IdlingConfig:
        return IdlingConfig(fuel_l_per_h=self.idling_fuel_l_per_h, source=self.idling_source)


class AlertSettings(_Section):
    offline_after_s: float = Field(
        default=300, gt=0, description="a vehicle silent this long is offline"
    )
    no_fix_after_s: float = Field(
        default=600, gt=0, description="telemetry without a valid GPS fix for this long"
    )
    confirm_after_s: float = Field(
        default=60,
        ge=0,
        description="a missing fix or a low battery is raised once seen this long",
    )
    low_soc_pct: float = Field(default=20, ge=0, le=100)
    low_soc_clear_pct: float = Field(
        default=25, ge=0, le=100, description="the low-battery alert clears at or above this"
    )
    tick_s: float = Field(default=5, gt=0, description="how often time-based rules run")
    webhook_url: AnyHttpUrl | None = Field(
        default=None, description="POST each alert's raise and clear here as JSON"
    )
    webhook_timeout_s: float = Field(default=5, gt=0)
    webhook_max_attempts: int = Field(default=8, ge=1)
    webhook_backoff_s: float = Field(default=2, gt=0, description="first retry delay; doubles")
    webhook_max_backoff_s: float = Field(default=300, gt=0)

    @model_validator(mode="after")
    def _hysteresis(self) -> Self:
        if self.low_soc_clear_pct < self.low_soc_pct:
            raise ValueError(
                f"low_soc_clear_pct {self.low_soc_clear_pct} is below low_soc_pct "
                f"{self.low_soc_pct}"
            )
        return self


class DomainSettings(_Section):
    """What the ingest derives from the telemetry: cold chain, footprint, alerts."""

    fridge: FridgeRules = Field(default_factory=FridgeRules)
    fridge_by_vehicle: dict[str, FridgeRules] = Field(
        default_factory=dict, description="a vehicle's own values, over [fridge]"
    )
    footprint: FootprintSettings = Field(default_factory=FootprintSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    derive_every_s: float = Field(
        default=30, gt=0, description="how often daily records of changed days are rebuilt"
    )
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)

    def fridge_rules(self, vehicle: str) -> FridgeRules:
        override = self.fridge_by_vehicle.get(vehicle)
        return self.fridge if override is None else self.fridge.overridden_by(override)


class IngestSettings(TomlSettings):
    model_config = SettingsConfigDict(env_prefix="MEDICOBUS_INGEST_")

    database_url: Annotated[str, AfterValidator(check_database_url)] = Field(
        default="sqlite:///medicobus.sqlite"
    )
    itinerary_file: Path = Field(description="the fleet and its weekly timetable (TOML)")
    broker: BrokerConfig = Field(default_factory=lambda: BrokerConfig(client_id="medicobus-ingest"))
    max_future_skew_s: float = Field(default=300, gt=0)
    max_age_days: float = Field(default=30, gt=0)
    retention_days: float | None = Field(
        default=400,
        gt=0,
        description="raw samples older than this are deleted (none keeps them for ever); "
        "reports of a year need a year of samples",
    )
    shared_group: str | None = Field(
        default=None, description="share the load with other ingests ($share/<group>/...)"
    )
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(
        default=9108, ge=1, le=65535, description="Prometheus /metrics; none to disable"
    )
    influx: InfluxSettings | None = Field(
        default=None,
        description="also write every sample and derived metric to InfluxDB (url, token, org, "
        "bucket)",
    )
    punctuality: PunctualitySettings = Field(
        default_factory=PunctualitySettings,
        description="on-time band, matching window, ETA speeds, arrival detector",
    )
    fridge: FridgeRules = Field(default_factory=FridgeRules)
    fridge_by_vehicle: dict[str, FridgeRules] = Field(default_factory=dict)
    footprint: FootprintSettings = Field(default_factory=FootprintSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    derive_every_s: float = Field(default=30, gt=0)
    notifications: NotificationSettings = Field(
        default_factory=NotificationSettings,
        description="e-mail and SMS: people, roles, routes per operator, SMTP, SMS gateway",
    )

    @model_validator(mode="after")
    def _retention_outlives_max_age(self) -> IngestSettings:
        if self.retention_days is not None and self.retention_days <= self.max_age_days:
            raise ValueError(
                f"retention_days ({self.retention_days}) must exceed max_age_days "
                f"({self.max_age_days}): otherwise a late batch could be stored twice"
            )
        return self

    @model_validator(mode="after")
    def _one_writer_on_sqlite(self) -> IngestSettings:
        backend = sa.engine.make_url(self.database_url).get_backend_name()
        if self.shared_group and backend == "sqlite":
            raise ValueError(
                "shared_group runs several ingests on one database; SQLite takes one writer "
                "at a time: use PostgreSQL (database_url = postgresql://…) or remove "
                "shared_group"
            )
        return self

    def domain(self) -> DomainSettings:
        return DomainSettings(
            fridge=self.fridge,
            fridge_by_vehicle=self.fridge_by_vehicle,
            footprint=self.footprint,
            alerts=self.alerts,
            derive_every_s=self.derive_every_s,
            notifications=self.notifications,
        )
