"""Configuration of an OBD-II adapter (ELM327) on a serial port."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ObdPortConfig(BaseModel):
    """An ELM327 adapter on the vehicle's diagnostic socket (USB: ``/dev/ttyUSB1``)."""

    model_config = ConfigDict(extra="forbid")

    port: str = Field(min_length=1, description="serial device, e.g. /dev/ttyUSB1")
    # ELM327 USB adapters answer at 38400 baud by default; some clones at 9600 or 115200.
    baudrate: int = Field(default=38400, ge=1200, le=921600)
    interval_s: float = Field(
        default=2.0, ge=0.5, le=3600, description="how often the engine is asked"
    )
    timeout_s: float = Field(
        default=5.0, ge=0.5, le=60, description="an answer slower than this reopens the port"
    )
