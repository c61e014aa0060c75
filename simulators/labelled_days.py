"""Scenario days labelled with what really happened, for measuring an arrival detector.

A labelled day is a planned scenario day (:func:`simulators.day_plan.plan_day`) with:

- its true events: every stay of the bus at a stop (the scheduled visits and the depot),
  arriving when it came to rest there and departing when it set off from where it rested
  (then leaving the zone, :mod:`simulators.truth`). A stay already in progress when the
  day begins has a censored arrival; one still in progress when it ends has no departure;
- its decoys: each passage through a zone with no stay in it (a drive-by) and each
  standstill inside a zone while driving (a red light at the edge);
- the fixes the bus's receiver gives through the day (:class:`ScenarioGpsTrack`), as the
  ingest gets them: epochs without a fix give none, the others become a ``GpsSample``
  as the edge agent builds it, then a detector :class:`Fix`.

The labelled set varies each bundled scenario over every weekday of its week on which
its vehicle has visits and its events fit the timetable, and over a few variants: other
dates (across the change to summer time), other noise seeds, a crew that parks well
ahead of time, a receiver with a poorer view of the sky. Deterministic: the same
arguments give the same days.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property

from ingest.itinerary import Itinerary
from ingest.punctuality.detector import Fix
from protocol import wire
from protocol.models import GpsSample
from simulators.accuracy import Decoy, TrueEvent
from simulators.day_plan import DEPOT, DayPlan, Driving, Parked, plan_day
from simulators.geo import haversine_m
from simulators.gps_track import ScenarioGpsTrack
from simulators.scenario import (
    DriveBy,
    GpsOutage,
    Scenario,
    ScenarioError,
    bundled_scenarios,
    load_scenario,
)
from simulators.truth import ScenarioTruth, ZoneInterval, truth_of


@dataclass(frozen=True)
class Variant:
    """A scenario replayed ``weeks_later``, with its seed shifted by ``seed_offset`` and,
    where given, the crew's ``early_min`` and the receiver's ``noise_m`` changed."""

    name: str
    weeks_later: int = 0
    seed_offset: int = 0
    early_min: float | None = None
    noise_m: float | None = None

    def apply(self, scenario: Scenario) -> Scenario:
        day = scenario.day
        if self.early_min is not None:
            day = day.model_copy(update={"early_min": self.early_min})
        gps = scenario.gps
        if self.noise_m is not None:
            gps = gps.model_copy(update={"noise_m": self.noise_m})
        return scenario.model_copy(
            update={
                "seed": scenario.seed + self.seed_offset,
                "day": day.model_copy(
                    update={"date": day.date + timedelta(weeks=self.weeks_later)}
                ),
                "gps": gps,
            }
        )


AS_WRITTEN = Variant("as-written")
DEFAULT_VARIANTS: tuple[Variant, ...] = (
    AS_WRITTEN,
    # A quarter later, a crew that parks a quarter of an hour ahead of time.
    Variant("early-crew", weeks_later=13, seed_offset=101, early_min=15.0),
    # Half a year later (summer time against winter), a receiver under trees or in a
    # narrow street: twice the usual position error.
    Variant("poor-sky", weeks_later=26, seed_offset=202, noise_m=5.0),
)


@dataclass(frozen=True)
class LabelledDay:
    scenario: str
    variant: str
    plan: DayPlan

    @property
    def label(self) -> str:
        return f"{self.scenario}/{self.variant}/{self.day.isoformat()}"

    @property
    def day(self) -> date:
        return self.plan.scenario.day.date

    @property
    def vehicle(self) -> str:
        return self.plan.vehicle.id

    @cached_property
    def truth(self) -> ScenarioTruth:
        return truth_of(self.plan)

    @property
    def visits(self) -> int:
        """Scheduled visits of the day, made or not."""
        return len(self.plan.visits)

    @cached_property
    def true_events(self) -> tuple[TrueEvent, ...]:
        plan, truth, vehicle = self.plan, self.truth, self.vehicle
        # Parked phases in one zone interval (a visit at the depot, then the end of the day
        # there, without leaving the zone) are one stay: arrival when the first began,
        # departure when the last ended, the bus setting off, if it then left the zone.
        stays: list[tuple[ZoneInterval, list[Parked]]] = []
        for phase in plan.phases:
            if not isinstance(phase, Parked) or phase.start_s >= plan.end_s:
                continue
            arrived = plan.time_of(phase.start_s)
            interval = next(
                z
                for z in truth.intervals_at(phase.place.name)
                if z.entered <= arrived and (z.left is None or arrived <= z.left)
            )
            if stays and stays[-1][0] == interval:
                stays[-1][1].append(phase)
            else:
                stays.append((interval, [phase]))
        events: list[TrueEvent] = []
        for interval, phases in stays:
            first, last = phases[0], phases[-1]
            stop = first.place.name
            events.append(
                TrueEvent(
                    vehicle,
                    stop,
                    "arrival",
                    plan.time_of(first.start_s),
                    censored=first.start_s <= 0,
                    in_outage=not plan.has_fix(first.start_s),
                )
            )
            if interval.left is not None:
                events.append(
                    TrueEvent(
                        vehicle,
                        stop,
                        "departure",
                        plan.time_of(last.end_s),
                        in_outage=not plan.has_fix(last.end_s),
                    )
                )
        return tuple(events)

    @cached_property
    def decoys(self) -> tuple[Decoy, ...]:
        plan, truth, vehicle = self.plan, self.truth, self.vehicle
        stays = [e for e in self.true_events if e.kind == "arrival"]
        decoys: list[Decoy] = []
        for zone in truth.zone_intervals:
            left = zone.left or plan.end
            if not any(a.stop == zone.stop and zone.entered <= a.t <= left for a in stays):
                decoys.append(Decoy(vehicle, zone.stop, "drive_by", zone.entered, left))
        stops = plan.itinerary.stops
        for phase in plan.phases:
            if not isinstance(phase, Driving):
                continue
            for start, end, s in phase.trajectory.rests():
                lat, lon, _ = phase.road.at(s)
                decoys += [
                    Decoy(vehicle, stop.id, "rest_in_zone", plan.time_of(start), plan.time_of(end))
                    for stop in stops
                    if haversine_m(lat, lon, stop.lat, stop.lon) <= stop.radius_m
                ]
        return tuple(sorted(decoys, key=lambda d: d.start))

    def fixes(self) -> list[Fix]:
        """The receiver's fixes through the day, one per epoch with a fix."""
        return receiver_fixes(self.plan)


def receiver_fixes(plan: DayPlan) -> list[Fix]:
    track = ScenarioGpsTrack(plan)
    period = 1.0 / plan.scenario.gps.rate_hz
    fixes: list[Fix] = []
    for i in range(int(plan.end_s / period) + 1):
        epoch = track.epoch_at(plan.time_of(i * period))
        if not epoch.fix:
            continue
        sample = GpsSample(
            t=epoch.t,
            lat=epoch.lat,
            lon=epoch.lon,
            alt_m=epoch.alt_m,
            speed_mps=epoch.speed_mps,
            course_deg=epoch.course_deg % 360.0,
            fix_mode=3,
            sats=epoch.sats,
            hdop=epoch.hdop,
        )
        fix = Fix.from_sample(wire.GpsSample(**sample.model_dump()))
        if fix is not None:
            fixes.append(fix)
    return fixes


def arrivals_in_outages(
    itinerary: Itinerary,
    scenarios: Sequence[str] | None = None,
    variants: Sequence[Variant] = DEFAULT_VARIANTS,
    *,
    longest_s: float = 600.0,
) -> Iterator[LabelledDay]:
    """Each scenario's own day (per variant) again for each stop it drives to, with the
    receiver losing its fix shortly before the bus comes to rest there (20 s to 5 min,
    never before it set off) and finding it again after (the outage lasting at most
    ``longest_s``): a covered car park, a dead zone. Drawn from a seed per day and stop."""
    for day in labelled_days(itinerary, scenarios, variants, every_weekday=False):
        plan = day.plan
        for phase in plan.phases:
            if not isinstance(phase, Driving) or phase.destination == DEPOT:
                continue
            arrival_s = phase.end_s
            if arrival_s >= plan.end_s or not plan.has_fix(arrival_s):
                continue
            rng = random.Random(zlib.crc32(f"{day.label}/{phase.destination}".encode()))
            before = rng.uniform(20.0, max(20.0, min(300.0, phase.end_s - phase.start_s - 30.0)))
            duration = rng.uniform(before + 60.0, longest_s)
            lost_at = plan.local(arrival_s - before).time()
            outage = GpsOutage(kind="gps_outage", at=lost_at, duration_min=duration / 60.0)
            scenario = plan.scenario.model_copy(update={"events": [*plan.scenario.events, outage]})
            outage_plan = _fits(scenario, itinerary)
            if outage_plan is not None:
                yield LabelledDay(
                    day.scenario, f"{day.variant}+outage-{phase.destination}", outage_plan
                )


def _week_of(day: date) -> list[date]:
    monday = day - timedelta(days=day.isoweekday() - 1)
    return [monday + timedelta(days=i) for i in range(7)]


def _fits(scenario: Scenario, itinerary: Itinerary) -> DayPlan | None:
    """The scenario's plan on its date, or None when its events do not fit that day."""
    try:
        plan = plan_day(scenario, itinerary)
    except ScenarioError:
        return None
    visited = {v.stop.id for v in plan.visits}
    # Driving "by" a stop the bus visits that day is no drive-by.
    if any(isinstance(e, DriveBy) and e.stop in visited for e in scenario.events):
        return None
    return plan


def labelled_days(
    itinerary: Itinerary,
    scenarios: Sequence[str] | None = None,
    variants: Sequence[Variant] = DEFAULT_VARIANTS,
    *,
    every_weekday: bool = True,
) -> Iterator[LabelledDay]:
    """The labelled set: each scenario (bundled, by name; all by default) × variant ×
    weekday of its week that fits (only the scenario's own date if not ``every_weekday``)."""
    bundled = bundled_scenarios()
    names = list(bundled) if scenarios is None else list(scenarios)
    for name in names:
        if name not in bundled:
            known = ", ".join(bundled) or "none"
            raise ScenarioError(f"{name}: no such bundled scenario ({known})")
        base = load_scenario(bundled[name])
        for variant in variants:
            scenario = variant.apply(base)
            days = _week_of(scenario.day.date) if every_weekday else [scenario.day.date]
            for day in days:
                plan = _fits(scenario.on(day), itinerary)
                if plan is not None:
                    yield LabelledDay(name, variant.name, plan)
