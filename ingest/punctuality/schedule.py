"""The weekly timetable expanded into dated visits, with its exceptions.

Slots are written in local time (the itinerary's zone, Europe/Paris); a visit carries its
scheduled arrival and departure as aware UTC datetimes converted with zoneinfo on its own
date, so the hours stay the same local hours on both sides of a daylight-saving change.

Exceptions, in the order they apply:

* validity: outside the timetable's period (global, or per vehicle) there is no visit at all;
* French public holidays cancel the weekly visits unless the day is listed as worked;
* a cancelled day cancels every visit of that day (one vehicle or the whole fleet), extras
  included; a visit cancellation cancels one visit;
* a one-off change moves a visit's times or stop; the visit keeps its id, so corrections
  attached to it stay attached;
* an extra visit adds a one-off visit (public holidays do not cancel it: it was set on
  purpose).

Cancelled visits are returned with their reason: a coordinator must see them, and the
punctuality report classes them as cancelled rather than missed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo

from ingest.itinerary import Itinerary
from ingest.public_holidays import public_holiday_name


class ScheduleError(ValueError):
    """Schedule input that cannot be expanded; the message says which item and why."""


@dataclass(frozen=True)
class Period:
    """Inclusive range of local dates; an open end is unbounded."""

    first: date | None = None
    last: date | None = None

    def __post_init__(self) -> None:
        if self.first is not None and self.last is not None and self.last < self.first:
            raise ScheduleError(f"period ends ({self.last}) before it starts ({self.first})")

    def __contains__(self, day: object) -> bool:
        if not isinstance(day, date):
            return False
        return (self.first is None or day >= self.first) and (self.last is None or day <= self.last)


@dataclass(frozen=True)
class DayCancellation:
    """No visit on ``day`` for ``vehicle`` (None: the whole fleet), e.g. breakdown or snow."""

    day: date
    vehicle: str | None = None
    reason: str = "day cancelled"


@dataclass(frozen=True)
class VisitCancellation:
    visit_id: str
    reason: str = "visit cancelled"


@dataclass(frozen=True)
class VisitChange:
    """A one-off change to one visit: new local times and/or another stop."""

    visit_id: str
    arrive: time | None = None
    depart: time | None = None
    stop: str | None = None


@dataclass(frozen=True)
class ExtraVisit:
    """A visit outside the weekly timetable, in local time."""

    vehicle: str
    day: date
    stop: str
    arrive: time
    depart: time


@dataclass(frozen=True)
class ScheduleRules:
    validity: Period = Period()
    vehicle_validity: Mapping[str, Period] = field(default_factory=dict)
    skip_public_holidays: bool = True
    alsace_moselle: bool = False
    worked_holidays: frozenset[date] = frozenset()
    day_cancellations: tuple[DayCancellation, ...] = ()
    visit_cancellations: tuple[VisitCancellation, ...] = ()
    changes: tuple[VisitChange, ...] = ()
    extra_visits: tuple[ExtraVisit, ...] = ()


VisitOrigin = Literal["weekly", "extra"]


@dataclass(frozen=True)
class Visit:
    """A vehicle expected at a stop on a local date, between two UTC instants."""

    id: str
    vehicle: str
    stop: str
    day: date
    scheduled_arrival: datetime
    scheduled_departure: datetime
    origin: VisitOrigin = "weekly"
    changed: bool = False
    cancelled_reason: str | None = None

    @property
    def cancelled(self) -> bool:
        return self.cancelled_reason is not None


def local_to_utc(day: date, local: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a local wall-clock time on ``day``.

    zoneinfo's PEP 495 rules (fold=0) decide the two odd cases: a time that does not exist
    (skipped in spring) is read with the offset before the change, i.e. shifted forward by
    the gap (02:30 becomes 03:30); a time that occurs twice in autumn is its first occurrence.
    """
    return datetime.combine(day, local.replace(tzinfo=None, fold=0), tzinfo=zone).astimezone(UTC)


def visit_id(vehicle: str, day: date, stop: str, occurrence: int = 1) -> str:
    """Readable and stable: ``vexin-01:2026-11-23:vesly``; a second visit of the same stop on
    the same day by the same vehicle gets ``#2``."""
    base = f"{vehicle}:{day.isoformat()}:{stop}"
    return base if occurrence == 1 else f"{base}#{occurrence}"


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def _check_rules(itinerary: Itinerary, rules: ScheduleRules) -> None:
    vehicles = {v.id for v in itinerary.vehicles}
    stops = {s.id for s in itinerary.stops}
    for vehicle in rules.vehicle_validity:
        if vehicle not in vehicles:
            raise ScheduleError(f"validity for unknown vehicle {vehicle!r}")
    for c in rules.day_cancellations:
        if c.vehicle is not None and c.vehicle not in vehicles:
            raise ScheduleError(f"day cancellation {c.day}: unknown vehicle {c.vehicle!r}")
    for ch in rules.changes:
        if ch.stop is not None and ch.stop not in stops:
            raise ScheduleError(f"change of {ch.visit_id}: unknown stop {ch.stop!r}")
        if ch.arrive is not None and ch.depart is not None and ch.depart <= ch.arrive:
            raise ScheduleError(f"change of {ch.visit_id}: depart {ch.depart} not after arrive")
    for x in rules.extra_visits:
        if x.vehicle not in vehicles:
            raise ScheduleError(f"extra visit on {x.day}: unknown vehicle {x.vehicle!r}")
        if x.stop not in stops:
            raise ScheduleError(f"extra visit on {x.day}: unknown stop {x.stop!r}")
        if x.depart <= x.arrive:
            raise ScheduleError(f"extra visit on {x.day} at {x.stop}: depart not after arrive")
    seen: set[str] = set()
    for ch in rules.changes:
        if ch.visit_id in seen:
            raise ScheduleError(f"two changes for visit {ch.visit_id}")
        seen.add(ch.visit_id)


def expand_schedule(
    itinerary: Itinerary,
    first: date,
    last: date,
    rules: ScheduleRules | None = None,
    vehicles: Collection[str] | None = None,
) -> list[Visit]:
    """Every visit from ``first`` to ``last`` (local dates, inclusive), cancelled ones included,
    ordered by scheduled arrival then vehicle."""
    rules = rules or ScheduleRules()
    if last < first:
        raise ScheduleError(f"date range ends ({last}) before it starts ({first})")
    known = [v.id for v in itinerary.vehicles]
    if vehicles is not None:
        unknown = sorted(set(vehicles) - set(known))
        if unknown:
            raise ScheduleError(f"unknown vehicles: {', '.join(unknown)}")
    selected = [v for v in known if vehicles is None or v in vehicles]
    _check_rules(itinerary, rules)
    zone = itinerary.zone
    cancelled_days = {(c.day, c.vehicle): c.reason for c in rules.day_cancellations}
    cancelled_visits = {c.visit_id: c.reason for c in rules.visit_cancellations}
    changes = {c.visit_id: c for c in rules.changes}

    visits: list[Visit] = []
    for vehicle in selected:
        validity = rules.vehicle_validity.get(vehicle, rules.validity)
        slots = itinerary.slots_of(vehicle)
        extras = sorted(
            (x for x in rules.extra_visits if x.vehicle == vehicle), key=lambda x: x.arrive
        )
        for day in _days(first, last):
            day_reason = cancelled_days.get((day, vehicle)) or cancelled_days.get((day, None))
            holiday = None
            if rules.skip_public_holidays and day not in rules.worked_holidays:
                holiday = public_holiday_name(day, alsace_moselle=rules.alsace_moselle)
            weekly_reason = day_reason or (f"public holiday: {holiday}" if holiday else None)
            planned = [
                _Planned(vehicle, day, s.stop, s.arrive, s.depart, "weekly", weekly_reason)
                for s in slots
                if s.weekday == day.isoweekday() and day in validity
            ] + [
                _Planned(vehicle, day, x.stop, x.arrive, x.depart, "extra", day_reason)
                for x in extras
                if x.day == day
            ]
            occurrences: Counter[str] = Counter()
            for p in planned:
                occurrences[p.stop] += 1
                vid = visit_id(vehicle, day, p.stop, occurrences[p.stop])
                visits.append(_make_visit(vid, p, zone, changes.get(vid), cancelled_visits))
    visits.sort(key=lambda v: (v.scheduled_arrival, v.vehicle, v.id))
    return visits


class _Planned(NamedTuple):
    vehicle: str
    day: date
    stop: str
    arrive: time
    depart: time
    origin: VisitOrigin
    cancelled_reason: str | None


def _make_visit(
    vid: str,
    planned: _Planned,
    zone: ZoneInfo,
    change: VisitChange | None,
    cancelled_visits: Mapping[str, str],
) -> Visit:
    stop, arrive, depart = planned.stop, planned.arrive, planned.depart
    if change is not None:
        stop = change.stop if change.stop is not None else stop
        arrive = change.arrive if change.arrive is not None else arrive
        depart = change.depart if change.depart is not None else depart
        if depart <= arrive:
            raise ScheduleError(f"change of {vid}: depart {depart} not after arrive {arrive}")
    return Visit(
        id=vid,
        vehicle=planned.vehicle,
        stop=stop,
        day=planned.day,
        scheduled_arrival=local_to_utc(planned.day, arrive, zone),
        scheduled_departure=local_to_utc(planned.day, depart, zone),
        origin=planned.origin,
        changed=change is not None,
        cancelled_reason=planned.cancelled_reason or cancelled_visits.get(vid),
    )


def schedule_rules(itinerary: Itinerary) -> ScheduleRules:
    """The validity and exceptions written in the itinerary file, as rules for the expansion."""
    calendar = itinerary.calendar
    return ScheduleRules(
        validity=Period(calendar.valid_from, calendar.valid_until),
        vehicle_validity={
            v.id: Period(
                v.valid_from if v.valid_from is not None else calendar.valid_from,
                v.valid_until if v.valid_until is not None else calendar.valid_until,
            )
            for v in itinerary.vehicles
            if v.valid_from is not None or v.valid_until is not None
        },
        skip_public_holidays=calendar.skip_public_holidays,
        alsace_moselle=calendar.alsace_moselle,
        worked_holidays=frozenset(calendar.worked_holidays),
        day_cancellations=tuple(
            DayCancellation(c.day, c.vehicle, c.reason) for c in itinerary.cancelled_days
        ),
        visit_cancellations=tuple(
            VisitCancellation(c.visit, c.reason) for c in itinerary.cancelled_visits
        ),
        changes=tuple(VisitChange(c.visit, c.arrive, c.depart, c.stop) for c in itinerary.changes),
        extra_visits=tuple(
            ExtraVisit(x.vehicle, x.day, x.stop, x.arrive, x.depart) for x in itinerary.extra_visits
        ),
    )
