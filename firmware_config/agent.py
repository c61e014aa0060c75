"""The edge agent's configuration: one TOML file per vehicle."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from firmware_config.fridge import FridgePortConfig
from firmware_config.loader import TomlSettings
from firmware_config.obd import ObdPortConfig
from firmware_config.vedirect import VeDirectPortConfig
from protocol.models import MAX_SAMPLES_PER_BATCH, VEHICLE_ID_PATTERN


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BrokerConfig(_Section):
    url: str = Field(default="mqtt://127.0.0.1:1883", description="mqtt://host:port or mqtts://")
    username: str | None = None
    password: str | None = None
    client_id: str | None = Field(default=None, description="defaults to medicobus-<vehicle>")
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    ca_file: Path | None = Field(default=None, description="CA bundle for mqtts://")
    cert_file: Path | None = Field(
        default=None,
        description="the bus's client certificate for mqtts:// (its common name is the "
        "bus's username): medicobus bus provision --ca-dir",
    )
    key_file: Path | None = Field(default=None, description="the client certificate's key")

    @model_validator(mode="after")
    def _check_certificate(self) -> BrokerConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if self.cert_file is not None and not self.tls:
            raise ValueError("a client certificate needs an mqtts:// url")
        return self

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("must look like mqtt://host:port or mqtts://host:port")
        try:
            _ = parts.port
        except ValueError as exc:
            raise ValueError(f"bad port ({exc})") from None
        return value

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"


class GpsPortConfig(_Section):
    port: str = Field(description="serial device, e.g. /dev/ttyACM0")
    baudrate: int = Field(default=9600, ge=1200, le=921600)
    rate_hz: float = Field(default=1.0, gt=0, le=10, description="receiver's fix rate")
    keep_every_s: float = Field(
        default=1.0, ge=0, le=3600, description="one fix kept per interval; 0 keeps every fix"
    )


class OutboxConfig(_Section):
    """The on-disk store-and-forward queue (``<state_dir>/outbox.sqlite``)."""

    commit_interval_s: float = Field(
        default=1.0,
        ge=1.0,
        le=60,
        description="samples are written to disk in one transaction this often; at least 1 s "
        "so an SD card is not worn out, and at most this much is lost if the agent is killed",
    )
    max_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=64 * 1024,
        description="bound on stored samples; when over it, the oldest samples of the least "
        "important stream go first: status, then gps, energy, event, and fridge last",
    )
    max_batch_samples: int = Field(
        default=500,
        ge=1,
        le=MAX_SAMPLES_PER_BATCH,
        description="largest batch, reached when a backlog is sent after an outage",
    )
    max_inflight: int = Field(
        default=100, ge=1, le=10000, description="batches sent but not yet acknowledged"
    )
    confirm_timeout_s: float = Field(
        default=60.0,
        ge=1,
        le=3600,
        description="a batch the ingest has not confirmed this long after the broker took "
        "it is sent again (same seq: the ingest drops copies); each new attempt of the same "
        "batch waits twice as long, up to confirm_timeout_max_s",
    )
    confirm_timeout_max_s: float = Field(
        default=1800.0, ge=1, le=86400, description="longest wait between two attempts"
    )

    @model_validator(mode="after")
    def _longest_wait_not_shorter(self) -> OutboxConfig:
        if self.confirm_timeout_max_s < self.confirm_timeout_s:
            raise ValueError("confirm_timeout_max_s must not be shorter than confirm_timeout_s")
        return self


class AgentConfig(TomlSettings):
    """Everything the agent on one bus needs. Env vars: ``MEDICOBUS_AGENT_*``."""

    model_config = SettingsConfigDict(env_prefix="MEDICOBUS_AGENT_")

    vehicle: str = Field(pattern=VEHICLE_ID_PATTERN)
    state_dir: Path = Field(
        default=Path("/var/lib/medicobus"), description="where the outbox is kept"
    )
    batch_window_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="samples of one stream gathered into a batch; a window shorter than the "
        "outbox's commit interval acts as that interval (a sample is on disk before it is sent)",
    )
    status_interval_s: float = Field(
        default=30.0, ge=1, le=3600, description="how often the agent reports its own health"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    gps: GpsPortConfig | None = None
    vedirect: list[VeDirectPortConfig] = Field(
        default_factory=list, description="battery monitor and solar charger ports"
    )
    fridge: FridgePortConfig | None = None
    obd: ObdPortConfig | None = Field(
        default=None, description="an OBD-II adapter: the engine's fuel, measured"
    )
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
