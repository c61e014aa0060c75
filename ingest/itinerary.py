"""The fleet and its weekly itinerary, as written by operators in a TOML file.

Times in the file are local (``timezone``, Europe/Paris by default); nothing here
converts them, the schedule does, with zoneinfo.
"""

from __future__ import annotations

import tomllib
from datetime import time
from pathlib import Path
from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from protocol.models import VEHICLE_ID_PATTERN


class ItineraryError(ValueError):
    """An itinerary file that cannot be used; the message names the file and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Operator(_Model):
    id: str
    name: str


class Vehicle(_Model):
    id: str = Field(pattern=VEHICLE_ID_PATTERN)
    operator: str
    label: str
    traction: Literal["diesel", "petrol", "electric"]
    fuel_l_per_100km: float | None = Field(default=None, gt=0)
    traction_battery_kwh: float | None = Field(default=None, gt=0)
    kwh_per_100km: float | None = Field(default=None, gt=0)
    aux_battery_kwh: float | None = Field(default=None, gt=0)
    depot: str


class Stop(_Model):
    id: str
    name: str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    radius_m: float = Field(gt=0, le=5000)
    nearest_surgery_km: float = Field(default=0.0, ge=0)


class Slot(_Model):
    """A weekly visit: this vehicle at this stop, this weekday, these local times."""

    vehicle: str
    weekday: int = Field(ge=1, le=7, description="1 = Monday")
    stop: str
    arrive: time
    depart: time

    @field_validator("arrive", "depart", mode="before")
    @classmethod
    def _parse_hhmm(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return time.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a time like 09:30") from None
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.depart <= self.arrive:
            raise ValueError(f"depart {self.depart} is not after arrive {self.arrive}")
        return self


class Itinerary(_Model):
    timezone: str = "Europe/Paris"
    operators: list[Operator] = Field(alias="operator", default_factory=list)
    vehicles: list[Vehicle] = Field(alias="vehicle", default_factory=list)
    stops: list[Stop] = Field(alias="stop", default_factory=list)
    slots: list[Slot] = Field(alias="slot", default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _references(self) -> Self:
        operators = {o.id for o in self.operators}
        stops = {s.id for s in self.stops}
        vehicles = {v.id for v in self.vehicles}
        for kind, count, ids in (
            ("operator", len(self.operators), operators),
            ("stop", len(self.stops), stops),
            ("vehicle", len(self.vehicles), vehicles),
        ):
            if len(ids) != count:
                raise ValueError(f"duplicate {kind} ids")
        for v in self.vehicles:
            if v.operator not in operators:
                raise ValueError(f"vehicle {v.id}: unknown operator {v.operator!r}")
            if v.depot not in stops:
                raise ValueError(f"vehicle {v.id}: unknown depot stop {v.depot!r}")
        for i, s in enumerate(self.slots):
            if s.vehicle not in vehicles:
                raise ValueError(f"slot {i}: unknown vehicle {s.vehicle!r}")
            if s.stop not in stops:
                raise ValueError(f"slot {i}: unknown stop {s.stop!r}")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def stop(self, stop_id: str) -> Stop:
        for s in self.stops:
            if s.id == stop_id:
                return s
        raise KeyError(stop_id)

    def vehicle(self, vehicle_id: str) -> Vehicle:
        for v in self.vehicles:
            if v.id == vehicle_id:
                return v
        raise KeyError(vehicle_id)

    def slots_of(self, vehicle_id: str) -> list[Slot]:
        return sorted(
            (s for s in self.slots if s.vehicle == vehicle_id), key=lambda s: (s.weekday, s.arrive)
        )


def load_itinerary(path: Path) -> Itinerary:
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ItineraryError(f"{path}: no such itinerary file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ItineraryError(f"{path}: not valid TOML ({exc})") from None
    try:
        return Itinerary.model_validate(raw)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise ItineraryError(f"{path}: {details}") from None
