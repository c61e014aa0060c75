"""Modbus sensor profiles: where a sensor model keeps each quantity and how to decode it.

A profile is a TOML file. The shipped ones live in ``firmware_config/profiles/`` and are
named by their file stem (``sht20-xy-md02``); a vehicle can also point at its own file.
Register addresses are the 0-based protocol addresses sent in the request, not the
30001-style numbers some data sheets print.
"""

from __future__ import annotations

import tomllib
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from firmware_config.loader import ConfigError

Quantity = Literal["temp_c", "humidity_pct", "door_open"]


class RegisterFunction(StrEnum):
    """The Modbus table a quantity is read from (and so the function code used)."""

    HOLDING_REGISTER = "holding_register"  # 0x03
    INPUT_REGISTER = "input_register"  # 0x04
    COIL = "coil"  # 0x01
    DISCRETE_INPUT = "discrete_input"  # 0x02

    @property
    def is_bit(self) -> bool:
        return self in (RegisterFunction.COIL, RegisterFunction.DISCRETE_INPUT)


class DataType(StrEnum):
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    FLOAT32 = "float32"
    BOOL = "bool"

    @property
    def words(self) -> int:
        """Registers (or bits, for ``bool``) one value occupies."""
        return 2 if self in (DataType.INT32, DataType.FLOAT32) else 1


# What each quantity means, so that a profile cannot map humidity onto temp_c by mistake.
QUANTITY_UNITS: Final[dict[str, str]] = {"temp_c": "°C", "humidity_pct": "%", "door_open": ""}


class RegisterMapping(BaseModel):
    """One quantity of a sensor: value = raw × scale + offset (or a contact, for bits)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    function: RegisterFunction
    address: int = Field(ge=0, le=0xFFFF, description="protocol address of the first word")
    words: int | None = Field(
        default=None, ge=1, le=2, description="registers read; implied by data_type"
    )
    data_type: DataType
    scale: float = Field(default=1.0, description="raw value is multiplied by this")
    offset: float = Field(default=0.0, description="then this is added")
    unit: str = ""
    word_order: Literal["big", "little"] = Field(
        default="big", description="for 32-bit values: which register holds the high word"
    )
    invert: bool = Field(default=False, description="for contacts: True when closed = inactive")

    @model_validator(mode="after")
    def _check_consistent(self) -> RegisterMapping:
        if self.function.is_bit != (self.data_type is DataType.BOOL):
            raise ValueError(
                f"data_type {self.data_type.value!r} does not fit function "
                f"{self.function.value!r} (coils and discrete inputs are 'bool', "
                "registers are numbers)"
            )
        if self.words is not None and self.words != self.data_type.words:
            raise ValueError(
                f"words = {self.words} but data_type {self.data_type.value!r} "
                f"takes {self.data_type.words}"
            )
        if self.data_type is DataType.BOOL and (self.scale != 1.0 or self.offset != 0.0):
            raise ValueError("scale and offset do not apply to a contact")
        if self.data_type is not DataType.BOOL and self.invert:
            raise ValueError("invert applies to contacts only")
        if self.scale == 0:
            raise ValueError("scale must not be 0")
        if self.address + self.word_count - 1 > 0xFFFF:
            raise ValueError("address + words runs past 65535")
        return self

    @property
    def word_count(self) -> int:
        return self.data_type.words


class SensorProfile(BaseModel):
    """A sensor model on the RS485 bus and the quantities it provides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64)
    description: str = ""
    slave_address: int = Field(ge=1, le=247, description="factory default; config may override")
    quantities: dict[Quantity, RegisterMapping] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_units(self) -> SensorProfile:
        for quantity, mapping in self.quantities.items():
            expected = QUANTITY_UNITS[quantity]
            if quantity == "door_open":
                if not mapping.function.is_bit:
                    raise ValueError(
                        "quantities.door_open: a door contact is a coil or a discrete input"
                    )
                continue
            if mapping.function.is_bit:
                raise ValueError(f"quantities.{quantity}: a measurement is read from registers")
            if mapping.unit != expected:
                raise ValueError(
                    f"quantities.{quantity}: unit is {mapping.unit!r}, expected {expected!r}"
                )
        return self


def _describe(error: ValidationError, origin: str) -> str:
    lines = [f"{origin}: {error.error_count()} invalid field(s)"]
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"]) or "(profile)"
        lines.append(f"  {where}: {item['msg']}")
    return "\n".join(lines)


def load_sensor_profile(path: Path) -> SensorProfile:
    """Read one profile file; a :class:`ConfigError` names the file and the field."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such sensor profile file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read sensor profile ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    try:
        return SensorProfile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, str(path))) from None


def shipped_profile_names() -> list[str]:
    folder = resources.files("firmware_config.profiles")
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    )


def resolve_sensor_profile(reference: str) -> SensorProfile:
    """A shipped profile by name (``sht20-xy-md02``) or a profile file by path."""
    if "/" in reference or reference.endswith(".toml"):
        return load_sensor_profile(Path(reference))
    if reference not in shipped_profile_names():
        raise ConfigError(
            f"no shipped sensor profile {reference!r}; "
            f"known: {', '.join(shipped_profile_names())} (or give a path to a .toml file)"
        )
    with resources.as_file(resources.files("firmware_config.profiles") / f"{reference}.toml") as p:
        return load_sensor_profile(p)
