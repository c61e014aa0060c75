"""Settings of the ingest process. Env vars: ``MEDICOBUS_INGEST_*``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from firmware_config.agent import BrokerConfig
from firmware_config.loader import TomlSettings
from ingest.punctuality.config import PunctualitySettings
from ingest.timeseries import InfluxSettings


class IngestSettings(TomlSettings):
    model_config = SettingsConfigDict(env_prefix="MEDICOBUS_INGEST_")

    database_url: str = Field(default="sqlite:///medicobus.sqlite")
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
        default=None, description="also write every sample to InfluxDB (url, token, org, bucket)"
    )
    punctuality: PunctualitySettings = Field(
        default_factory=PunctualitySettings,
        description="on-time band, matching window, ETA speeds, arrival detector",
    )

    @model_validator(mode="after")
    def _retention_outlives_max_age(self) -> IngestSettings:
        if self.retention_days is not None and self.retention_days <= self.max_age_days:
            raise ValueError(
                f"retention_days ({self.retention_days}) must exceed max_age_days "
                f"({self.max_age_days}): otherwise a late batch could be stored twice"
            )
        return self
