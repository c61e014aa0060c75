"""Configuration of the medical fridge's Modbus RTU sensors (one RS485 line)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from firmware_config.sensor_profiles import SensorProfile, resolve_sensor_profile


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FridgeSensorConfig(_Section):
    """One device on the line: its profile and, where it was re-addressed, its address."""

    profile: str = Field(description="shipped profile name (sht20-xy-md02) or path to a .toml")
    address: int | None = Field(
        default=None, ge=1, le=247, description="Modbus slave address; the profile's by default"
    )
    _profile: SensorProfile | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _load_profile(self) -> FridgeSensorConfig:
        # Loaded with the configuration so a bad profile stops the agent at start-up,
        # with the file and field named, rather than at the first poll.
        self._profile = resolve_sensor_profile(self.profile)
        return self

    @property
    def sensor_profile(self) -> SensorProfile:
        if self._profile is None:
            self._profile = resolve_sensor_profile(self.profile)
        return self._profile

    @property
    def slave_address(self) -> int:
        return self.address if self.address is not None else self.sensor_profile.slave_address

    @property
    def label(self) -> str:
        return f"{self.sensor_profile.name}@{self.slave_address}"


def _default_sensors() -> list[FridgeSensorConfig]:
    return [FridgeSensorConfig(profile="sht20-xy-md02")]


class FridgePortConfig(_Section):
    """The RS485 adapter the fridge's sensors hang on, and how they are polled."""

    port: str = Field(description="serial device, e.g. /dev/ttyUSB0")
    baudrate: int = Field(default=9600, ge=1200, le=115200)
    parity: Literal["N", "E", "O"] = "N"
    bytesize: Literal[7, 8] = 8
    stopbits: Literal[1, 2] = 1
    sensors: list[FridgeSensorConfig] = Field(default_factory=_default_sensors, min_length=1)
    poll_interval_s: float = Field(default=5.0, gt=0, le=3600)
    response_timeout_s: float = Field(
        default=0.5, gt=0, le=10, description="how long one request waits for its answer"
    )
    retries: int = Field(default=2, ge=0, le=10, description="extra attempts per request")
    retry_backoff_s: float = Field(
        default=0.2, ge=0, le=10, description="wait before the first retry; doubles after"
    )
    silent_after_s: float = Field(
        default=30.0, gt=0, description="a sensor quiet this long is reported silent"
    )
    reopen_backoff_s: float = Field(
        default=1.0, gt=0, le=60, description="first wait before reopening a lost port"
    )
    reopen_backoff_max_s: float = Field(default=30.0, gt=0, le=600)

    @model_validator(mode="after")
    def _check_sensors(self) -> FridgePortConfig:
        addresses: dict[int, str] = {}
        providers: dict[str, str] = {}
        for index, sensor in enumerate(self.sensors):
            where = f"sensors.{index}"
            if sensor.slave_address in addresses:
                raise ValueError(
                    f"{where}: address {sensor.slave_address} already used by "
                    f"{addresses[sensor.slave_address]}"
                )
            addresses[sensor.slave_address] = sensor.label
            for quantity in sensor.sensor_profile.quantities:
                if quantity in providers:
                    raise ValueError(
                        f"{where}: {quantity} already provided by {providers[quantity]}"
                    )
                providers[quantity] = sensor.label
        if self.reopen_backoff_max_s < self.reopen_backoff_s:
            raise ValueError("reopen_backoff_max_s must be at least reopen_backoff_s")
        return self
