"""The fleet and its weekly itinerary, as written by operators in a TOML file.

Times in the file are local (``timezone``, Europe/Paris by default); nothing here
converts them, the schedule does, with zoneinfo.

Besides the weekly slots, optional sections say when the timetable runs and where it
does not: ``[calendar]`` (validity dates, public holidays), a vehicle's own
``valid_from``/``valid_until``, and the exceptions ``[[cancelled_day]]``,
``[[cancelled_visit]]``, ``[[change]]`` (one-off new times or stop of one visit) and
``[[extra_visit]]``. Visits are named ``<vehicle>:<YYYY-MM-DD>:<stop>`` (``#2`` for the
second visit of the same stop that day).
"""

from __future__ import annotations

import re
import tomllib
from datetime import date, time
from pathlib import Path
from typing import Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ingest.follow_up.consultations import FollowUpSettings
from protocol.models import VEHICLE_ID_PATTERN


class ItineraryError(ValueError):
    """An itinerary file that cannot be used; the message names the file and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _parse_hhmm(value: object) -> object:
    if isinstance(value, str):
        try:
            return time.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a time like 09:30") from None
    return value


def _check_period(first: date | None, last: date | None, what: str) -> None:
    if first is not None and last is not None and last < first:
        raise ValueError(f"{what} ends ({last}) before it starts ({first})")


class Operator(_Model):
    id: str
    name: str
    url: str | None = Field(default=None, description="public web page (GTFS agency_url)")
    follow_up: FollowUpSettings = Field(
        default_factory=FollowUpSettings,
        description="patient profiles, specialities and professionals' ids for the yearly "
        "follow-up (the specifications' four profiles by default)",
    )


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
    valid_from: date | None = Field(default=None, description="first day of its timetable")
    valid_until: date | None = Field(default=None, description="last day of its timetable")
    service_start: date | None = Field(
        default=None,
        description="the day the bus began its service (the three-year evaluation counts "
        "from it); its timetable's first day if not given",
    )

    @model_validator(mode="after")
    def _period(self) -> Self:
        _check_period(self.valid_from, self.valid_until, f"vehicle {self.id}'s timetable")
        return self


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

    parse_times = field_validator("arrive", "depart", mode="before")(_parse_hhmm)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.depart <= self.arrive:
            raise ValueError(f"depart {self.depart} is not after arrive {self.arrive}")
        return self


class Calendar(_Model):
    """When the weekly timetable runs: its validity and the public holidays."""

    valid_from: date | None = None
    valid_until: date | None = None
    skip_public_holidays: bool = Field(
        default=True, description="French public holidays cancel the weekly visits"
    )
    alsace_moselle: bool = Field(default=False, description="add Good Friday and 26 December")
    worked_holidays: list[date] = Field(
        default_factory=list, description="public holidays on which the timetable runs anyway"
    )

    @model_validator(mode="after")
    def _period(self) -> Self:
        _check_period(self.valid_from, self.valid_until, "the timetable")
        return self


class CancelledDay(_Model):
    """No visit that day, for one vehicle or (without ``vehicle``) the whole fleet."""

    day: date
    vehicle: str | None = None
    reason: str = Field(default="day cancelled", min_length=1, max_length=200)


# vehicle:YYYY-MM-DD:stop, optionally #n for the n-th visit of that stop that day.
_VISIT_ID = re.compile(
    r"^(?P<vehicle>[^:]+):(?P<day>\d{4}-\d{2}-\d{2}):(?P<stop>[^:#]+)(#([2-9]|[1-9]\d+))?$"
)


def parse_visit_id(visit_id: str) -> tuple[str, date, str]:
    """(vehicle, day, stop) of a visit id, or ValueError saying what is wrong."""
    m = _VISIT_ID.match(visit_id)
    if m is None:
        raise ValueError(f"{visit_id!r} is not a visit id like vexin-01:2026-11-23:vesly")
    try:
        day = date.fromisoformat(m["day"])
    except ValueError:
        raise ValueError(f"visit {visit_id!r}: {m['day']} is not a date") from None
    return m["vehicle"], day, m["stop"]


class CancelledVisit(_Model):
    visit: str
    reason: str = Field(default="visit cancelled", min_length=1, max_length=200)


class Change(_Model):
    """A one-off change to one visit of the weekly timetable: times and/or stop."""

    visit: str
    arrive: time | None = None
    depart: time | None = None
    stop: str | None = None

    parse_times = field_validator("arrive", "depart", mode="before")(_parse_hhmm)

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.arrive is None and self.depart is None and self.stop is None:
            raise ValueError(f"change of {self.visit} changes nothing (arrive, depart or stop)")
        if self.arrive is not None and self.depart is not None and self.depart <= self.arrive:
            raise ValueError(f"depart {self.depart} is not after arrive {self.arrive}")
        return self


class ExtraVisit(_Model):
    """A one-off visit outside the weekly timetable."""

    vehicle: str
    day: date
    stop: str
    arrive: time
    depart: time

    parse_times = field_validator("arrive", "depart", mode="before")(_parse_hhmm)

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
    calendar: Calendar = Field(default_factory=Calendar)
    cancelled_days: list[CancelledDay] = Field(alias="cancelled_day", default_factory=list)
    cancelled_visits: list[CancelledVisit] = Field(alias="cancelled_visit", default_factory=list)
    changes: list[Change] = Field(alias="change", default_factory=list)
    extra_visits: list[ExtraVisit] = Field(alias="extra_visit", default_factory=list)

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
        for c in self.cancelled_days:
            if c.vehicle is not None and c.vehicle not in vehicles:
                raise ValueError(f"cancelled_day {c.day}: unknown vehicle {c.vehicle!r}")
        for what, visit in [("cancelled_visit", c.visit) for c in self.cancelled_visits] + [
            ("change", c.visit) for c in self.changes
        ]:
            vehicle, _, stop = parse_visit_id(visit)
            if vehicle not in vehicles:
                raise ValueError(f"{what} {visit}: unknown vehicle {vehicle!r}")
            if stop not in stops:
                raise ValueError(f"{what} {visit}: unknown stop {stop!r}")
        changed = [c.visit for c in self.changes]
        if len(set(changed)) != len(changed):
            raise ValueError("two changes of the same visit")
        for change in self.changes:
            if change.stop is not None and change.stop not in stops:
                raise ValueError(f"change {change.visit}: unknown stop {change.stop!r}")
        for x in self.extra_visits:
            if x.vehicle not in vehicles:
                raise ValueError(f"extra_visit on {x.day}: unknown vehicle {x.vehicle!r}")
            if x.stop not in stops:
                raise ValueError(f"extra_visit on {x.day}: unknown stop {x.stop!r}")
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

    def stops_served(self) -> set[tuple[str, str]]:
        """(stop, operator) for every stop an operator's vehicles use: depots, weekly
        slots, one-off changes and extra visits."""
        operator_of = {v.id: v.operator for v in self.vehicles}
        served = {(v.depot, v.operator) for v in self.vehicles}
        served |= {(s.stop, operator_of[s.vehicle]) for s in self.slots}
        served |= {
            (x.stop, operator_of[x.vehicle]) for x in self.extra_visits if x.vehicle in operator_of
        }
        for change in self.changes:
            if change.stop is not None:
                vehicle, _, _ = parse_visit_id(change.visit)
                if vehicle in operator_of:
                    served.add((change.stop, operator_of[vehicle]))
        return served

    def slots_of(self, vehicle_id: str) -> list[Slot]:
        return sorted(
            (s for s in self.slots if s.vehicle == vehicle_id), key=lambda s: (s.weekday, s.arrive)
        )


def itinerary_toml(itinerary: Itinerary) -> str:
    """The itinerary in the file format :func:`load_itinerary` reads."""
    doc: dict[str, Any] = itinerary.model_dump(by_alias=True, exclude_none=True, mode="python")
    if doc.get("calendar") == Calendar().model_dump(exclude_none=True):
        del doc["calendar"]
    for key in ("cancelled_day", "cancelled_visit", "change", "extra_visit"):
        if not doc.get(key):
            doc.pop(key, None)
    return tomli_w.dumps(doc)


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
