"""Configuration of one VE.Direct port: a Victron battery monitor or solar charger."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class VeDirectPortConfig(BaseModel):
    """One VE.Direct device on one serial port (a VE.Direct-USB cable, ``/dev/ttyUSB0``).

    The BMV and the MPPT each have their own port, so a bus lists one section per device.
    """

    model_config = ConfigDict(extra="forbid")

    port: str = Field(min_length=1, description="serial device, e.g. /dev/ttyUSB0")
    # VE.Direct TEXT is fixed at 19200 baud 8N1; other rates only for adapters that differ.
    baudrate: int = Field(default=19200, ge=1200, le=921600)
    device: Literal["bmv", "mppt"] = Field(
        description="bmv: battery monitor (BMV-7xx, SmartShunt); mppt: solar charger"
    )
    # A BMV's auxiliary input watching the starter battery tells whether the engine runs:
    # the alternator holds it above ~13.3 V, a resting 12 V battery sits near 12.6 V.
    engine_running_above_v: float | None = Field(
        default=13.3,
        gt=0,
        le=40,
        description="starter battery voltage meaning the engine runs; none: not watched",
    )
    engine_stopped_below_v: float = Field(default=12.9, gt=0, le=40)

    @model_validator(mode="after")
    def _hysteresis(self) -> VeDirectPortConfig:
        running = self.engine_running_above_v
        if running is not None and self.engine_stopped_below_v >= running:
            raise ValueError(
                "engine_stopped_below_v must be below engine_running_above_v (hysteresis)"
            )
        return self
