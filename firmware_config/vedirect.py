"""Configuration of one VE.Direct port: a Victron battery monitor or solar charger."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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
