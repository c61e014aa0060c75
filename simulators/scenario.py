"""Scenario files: one vehicle, one day of its timetable, and what goes wrong that day.

A scenario is a TOML file (the bundled ones are in ``simulators/scenarios/``)::

    description = "Late departure from the depot"
    seed = 7                       # noise, door openings: same seed, same day

    [vehicle]
    id = "vexin-01"                # a vehicle of the itinerary
    battery_soc = 0.85             # auxiliary battery at the start of the day

    [day]
    date = 2026-11-16              # the timetable's slots of that weekday apply
    start = "07:30"                # local time (the itinerary's zone); the clock starts here
    end = "18:30"

    [[event]]
    kind = "late_departure"
    place = "depot"
    delay_min = 25

Times are local, in the itinerary's time zone. Event kinds and their fields are the
classes below; a file with an unknown field or kind is refused, naming file and field.
Cross-checks against the itinerary (the vehicle exists, a skipped stop is visited that
day) happen when the day is planned (:func:`simulators.day_plan.plan_day`).
"""

from __future__ import annotations

import tomllib
from datetime import date, time
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from protocol.models import VEHICLE_ID_PATTERN


class ScenarioError(ValueError):
    """A scenario that cannot be run; the message names the file (or scenario) and field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VehicleSetup(_Model):
    id: str = Field(pattern=VEHICLE_ID_PATTERN, description="a vehicle of the itinerary")
    battery_soc: float = Field(
        default=0.85, ge=0.05, le=1.0, description="auxiliary battery at the start"
    )
    battery_ah: float | None = Field(
        default=None, gt=0, description="default: the itinerary's aux_battery_kwh at 12.8 V"
    )
    base_load_w: float = Field(
        default=60.0, ge=0, description="fridge, router, tracker: drawn all day"
    )
    consultation_load_w: float = Field(
        default=250.0, ge=0, description="surgery equipment while patients are seen"
    )
    solar_panel_w: float = Field(default=300.0, ge=0, description="roof array's peak power")
    alternator_a: float = Field(default=30.0, ge=0, description="DC-DC charger while driving")
    cabin_c: float = Field(default=22.0, ge=-30, le=50, description="air around the fridge")
    door_openings_per_hour: float = Field(
        default=4.0, ge=0, le=60, description="fridge door, during consultations only"
    )
    accel_mps2: float = Field(default=0.9, gt=0, le=3)
    brake_mps2: float = Field(default=1.2, gt=0, le=4)


class DaySetup(_Model):
    date: date
    start: time = Field(default=time(7, 30), description="local; the simulated clock starts here")
    end: time = Field(default=time(18, 30), description="local; the run stops here")
    early_min: float = Field(
        default=3.0, ge=0, le=60, description="the crew aims to park this early"
    )
    min_consultation_min: float = Field(
        default=30.0, ge=0, le=600, description="a late bus still stays this long"
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError(f"end {self.end} is not after start {self.start}")
        return self


class GpsSetup(_Model):
    rate_hz: float = Field(default=1.0, gt=0, le=10, description="receiver's fix rate")
    noise_m: float = Field(
        default=2.5, ge=0, le=50, description="standard error of each coordinate"
    )
    noise_tau_s: float = Field(
        default=30.0, gt=0, le=3600, description="how slowly the error wanders (parked drift)"
    )


class RoadSetup(_Model):
    """The road between two places, when its length alone would choose wrongly."""

    between: tuple[str, str]
    kind: Literal["departmental", "local"]


class LateDeparture(_Model):
    """The bus leaves ``place`` (``depot`` or a visited stop) ``delay_min`` late."""

    kind: Literal["late_departure"]
    place: str = "depot"
    delay_min: float = Field(gt=0, le=600)


class TrafficJam(_Model):
    """From ``at``, for ``duration_min``, a driving bus crawls at ``speed_kmh`` at most."""

    kind: Literal["traffic_jam"]
    at: time
    duration_min: float = Field(gt=0, le=600)
    speed_kmh: float = Field(default=8.0, gt=0, le=30)


class StopSkipped(_Model):
    """The visit to ``stop`` is not made: the bus drives on to the next place."""

    kind: Literal["stop_skipped"]
    stop: str


class DriveBy(_Model):
    """On its way to ``on_way_to`` (a visited stop or ``depot``) the bus drives through
    ``stop``'s zone without stopping."""

    kind: Literal["drive_by"]
    stop: str
    on_way_to: str


class TrafficLight(_Model):
    """Approaching ``stop``, the bus waits ``wait_s`` at a red light on the zone's edge."""

    kind: Literal["traffic_light"]
    stop: str
    wait_s: float = Field(default=40.0, gt=0, le=300)


class FridgeFailure(_Model):
    """The fridge's compressor stops at ``at`` (and runs again at ``repair_at``, if given)."""

    kind: Literal["fridge_failure"]
    at: time
    repair_at: time | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.repair_at is not None and self.repair_at <= self.at:
            raise ValueError(f"repair_at {self.repair_at} is not after at {self.at}")
        return self


class GpsOutage(_Model):
    """The receiver has no fix from ``at`` for ``duration_min`` (tunnel, antenna cable)."""

    kind: Literal["gps_outage"]
    at: time
    duration_min: float = Field(gt=0, le=600)


class NetworkLoss(_Model):
    """The bus's mobile link is down from ``at`` for ``duration_min``."""

    kind: Literal["network_loss"]
    at: time
    duration_min: float = Field(gt=0, le=600)


class LowBattery(_Model):
    """From ``at``, ``load_w`` more is drawn from the auxiliary battery (a heater left on)."""

    kind: Literal["low_battery"]
    at: time
    load_w: float = Field(default=800.0, gt=0, le=5000)
    duration_min: float = Field(default=180.0, gt=0, le=1440)


Event = Annotated[
    LateDeparture
    | TrafficJam
    | StopSkipped
    | DriveBy
    | TrafficLight
    | FridgeFailure
    | GpsOutage
    | NetworkLoss
    | LowBattery,
    Field(discriminator="kind"),
]


class Scenario(_Model):
    name: str = Field(default="", description="defaults to the file's name")
    description: str = ""
    seed: int = Field(default=0, ge=0)
    vehicle: VehicleSetup
    day: DaySetup
    gps: GpsSetup = Field(default_factory=GpsSetup)
    roads: list[RoadSetup] = Field(alias="road", default_factory=list)
    events: list[Event] = Field(alias="event", default_factory=list)

    def on(self, day: date) -> Scenario:
        """The same scenario on another date (the slots of that date's weekday apply)."""
        return self.model_copy(update={"day": self.day.model_copy(update={"date": day})})


def _describe(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}"
        for e in error.errors(include_url=False)
    )


def parse_scenario(raw: dict[str, object], origin: str, default_name: str) -> Scenario:
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError(f"{origin}: {_describe(exc)}") from None
    if not scenario.name:
        scenario = scenario.model_copy(update={"name": default_name})
    return scenario


def load_scenario(path: Path) -> Scenario:
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such scenario file") from None
    except IsADirectoryError:
        raise ScenarioError(f"{path}: is a folder, not a scenario file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML ({exc})") from None
    return parse_scenario(raw, str(path), path.stem)


def bundled_scenarios() -> dict[str, Path]:
    """The scenarios shipped in ``simulators/scenarios/``, by name."""
    folder = Path(str(resources.files("simulators").joinpath("scenarios")))
    return {p.stem: p for p in sorted(folder.glob("*.toml"))}


def resolve_scenario(name_or_path: str) -> Path:
    """A scenario file given by path, or a bundled scenario given by name."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        return path
    bundled = bundled_scenarios()
    if name_or_path in bundled:
        return bundled[name_or_path]
    known = ", ".join(bundled) or "none"
    raise ScenarioError(f"{name_or_path}: no such scenario file or bundled scenario ({known})")
