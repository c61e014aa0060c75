"""One vehicle's day planned from a scenario and the itinerary: where the bus is at every
instant, what it does, and what happens to it. Pure: no clock, no device.

The crew's rules: leave each place in time to park ``early_min`` before the next
scheduled arrival (never before the consultation there has ended), stay at a stop until
its scheduled departure (a bus that arrived late still stays ``min_consultation_min``),
then drive back to the depot after the last visit. The driver plans with the normal
driving time; a jam or a red light makes the bus late.

Times inside a plan are seconds since the scenario's start (``plan.start``, UTC).
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from typing import Literal

from ingest.itinerary import Itinerary, Slot, Stop, Vehicle
from simulators.driving import Hold, SpeedCap, Trajectory, drive
from simulators.geo import haversine_m
from simulators.roads import KMH, Place, Road, RoadKind
from simulators.scenario import (
    DriveBy,
    FridgeFailure,
    GpsOutage,
    LateDeparture,
    LowBattery,
    NetworkLoss,
    Scenario,
    ScenarioError,
    StopSkipped,
    TrafficJam,
    TrafficLight,
)
from simulators.vedirect_device import PowerConditions

DEPOT = "depot"
NOMINAL_BATTERY_V = 12.8
DEFAULT_BATTERY_AH = 200.0
DOOR_OPEN_S = (8.0, 20.0)  # long enough to take out a vaccine
LIGHT_INSIDE_EDGE_M = 5.0

Action = Literal["network_down", "network_up"]
FridgeActionKind = Literal["open_door", "close_door", "fail", "repair"]


@dataclass(frozen=True)
class PlannedVisit:
    """A slot of the day: when it was scheduled and what the bus does about it."""

    slot: Slot
    stop: Stop
    scheduled_arrival_s: float
    scheduled_departure_s: float
    skipped: bool
    arrival_s: float | None = None  # came to rest at the stop
    consultation_end_s: float | None = None
    set_off_s: float | None = None  # started driving away


@dataclass(frozen=True)
class Parked:
    place: Place
    start_s: float
    end_s: float
    course_deg: float


@dataclass(frozen=True)
class Driving:
    origin: str
    destination: str
    road: Road
    trajectory: Trajectory
    through: tuple[str, ...]

    @property
    def start_s(self) -> float:
        return self.trajectory.start_s

    @property
    def end_s(self) -> float:
        return self.trajectory.end_s


Phase = Parked | Driving


@dataclass(frozen=True)
class Motion:
    lat: float
    lon: float
    speed_mps: float
    course_deg: float
    driving: bool


@dataclass(frozen=True)
class Happening:
    """Something worth telling, at ``t_s``; ``action`` is for the run to carry out."""

    t_s: float
    text: str
    action: Action | None = None


@dataclass(frozen=True)
class FridgeAction:
    t_s: float
    kind: FridgeActionKind


@dataclass(frozen=True)
class Window:
    start_s: float
    end_s: float

    def __contains__(self, t_s: float) -> bool:
        return self.start_s <= t_s < self.end_s


@dataclass(frozen=True)
class DayPlan:
    scenario: Scenario
    vehicle: Vehicle
    itinerary: Itinerary
    start: datetime
    end_s: float
    phases: tuple[Phase, ...]
    visits: tuple[PlannedVisit, ...]
    consultations: tuple[Window, ...]
    happenings: tuple[Happening, ...]
    fridge_actions: tuple[FridgeAction, ...]
    gps_outages: tuple[Window, ...]
    network_losses: tuple[Window, ...]
    extra_loads: tuple[tuple[Window, float], ...]
    battery_ah: float
    _phase_starts: tuple[float, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_phase_starts", tuple(p.start_s for p in self.phases))

    @property
    def end(self) -> datetime:
        return self.time_of(self.end_s)

    def time_of(self, t_s: float) -> datetime:
        return self.start + timedelta(seconds=t_s)

    def seconds_of(self, t: datetime) -> float:
        return (t - self.start).total_seconds()

    def local(self, t_s: float) -> datetime:
        return self.time_of(t_s).astimezone(self.itinerary.zone)

    def phase_at(self, t_s: float) -> Phase:
        i = max(0, bisect_right(self._phase_starts, t_s) - 1)
        return self.phases[i]

    def motion_at(self, t_s: float) -> Motion:
        phase = self.phase_at(t_s)
        if isinstance(phase, Parked):
            return Motion(phase.place.lat, phase.place.lon, 0.0, phase.course_deg, False)
        s, v = phase.trajectory.at(t_s)
        lat, lon, course = phase.road.at(s)
        return Motion(lat, lon, v, course, True)

    def consulting(self, t_s: float) -> bool:
        return any(t_s in w for w in self.consultations)

    def has_fix(self, t_s: float) -> bool:
        return not any(t_s in w for w in self.gps_outages)

    def power_conditions_at(self, t: datetime) -> PowerConditions:
        t_s = self.seconds_of(t)
        setup = self.scenario.vehicle
        load = setup.base_load_w + sum(w for window, w in self.extra_loads if t_s in window)
        if self.consulting(t_s):
            load += setup.consultation_load_w
        depot = self.itinerary.stop(self.vehicle.depot)
        solar = setup.solar_panel_w * sun_factor(t, depot.lat, depot.lon)
        return PowerConditions(
            driving=isinstance(self.phase_at(t_s), Driving),
            solar_power_w=solar,
            equipment_load_w=load,
        )


def sun_factor(t: datetime, lat: float, lon: float) -> float:
    """Sine of the sun's elevation (0 at night): what a flat roof panel gets of its peak."""
    t = t.astimezone(UTC)
    day = t.timetuple().tm_yday
    declination = math.radians(-23.44) * math.cos(2 * math.pi * (day + 10) / 365)
    solar_hours = t.hour + t.minute / 60 + t.second / 3600 + lon / 15.0
    hour_angle = math.radians(15.0 * (solar_hours - 12.0))
    phi = math.radians(lat)
    elevation = math.sin(phi) * math.sin(declination) + math.cos(phi) * math.cos(
        declination
    ) * math.cos(hour_angle)
    return max(0.0, elevation)


class _Planner:
    def __init__(self, scenario: Scenario, itinerary: Itinerary) -> None:
        self.scenario = scenario
        self.itinerary = itinerary
        self.name = scenario.name or "scenario"
        try:
            self.vehicle = itinerary.vehicle(scenario.vehicle.id)
        except KeyError:
            raise self.error(
                "vehicle.id", f"no vehicle {scenario.vehicle.id!r} in the itinerary"
            ) from None
        self.zone = itinerary.zone
        day = scenario.day
        self.start = datetime.combine(day.date, day.start, tzinfo=self.zone).astimezone(UTC)
        self.end_s = self.seconds(day.end)
        self.towns = [Place(s.id, s.lat, s.lon) for s in itinerary.stops]
        self.depot = self.place(self.vehicle.depot)
        slots = [
            s for s in itinerary.slots_of(self.vehicle.id) if s.weekday == day.date.isoweekday()
        ]
        if not slots:
            raise self.error(
                "day.date",
                f"{self.vehicle.id} has no visit on {day.date:%A} {day.date.isoformat()}",
            )
        self.slots = sorted(slots, key=lambda s: s.arrive)
        self.visits_done: list[PlannedVisit] = []

    def error(self, where: str, message: str) -> ScenarioError:
        return ScenarioError(f"scenario {self.name}: {where}: {message}")

    def seconds(self, local: time) -> float:
        when = datetime.combine(self.scenario.day.date, local, tzinfo=self.zone)
        return (when - self.start).total_seconds()

    def place(self, stop_id: str) -> Place:
        stop = self.itinerary.stop(stop_id)
        return Place(stop.id, stop.lat, stop.lon)

    def check_time(self, where: str, at: time) -> float:
        t_s = self.seconds(at)
        if not 0.0 <= t_s <= self.end_s:
            raise self.error(where, f"{at} is outside the day ({self.scenario.day.start} to end)")
        return t_s

    def plan(self) -> DayPlan:
        scenario, setup = self.scenario, self.scenario.vehicle
        skipped = {e.stop for e in scenario.events if isinstance(e, StopSkipped)}
        day_stops = {s.stop for s in self.slots}
        visits = [
            PlannedVisit(
                slot=s,
                stop=self.itinerary.stop(s.stop),
                scheduled_arrival_s=self.seconds(s.arrive),
                scheduled_departure_s=self.seconds(s.depart),
                skipped=s.stop in skipped,
            )
            for s in self.slots
        ]
        visited = {v.stop.id for v in visits if not v.skipped}
        happenings: list[Happening] = []
        jams: list[SpeedCap] = []
        outages: list[Window] = []
        losses: list[Window] = []
        loads: list[tuple[Window, float]] = []
        fridge: list[FridgeAction] = []
        for i, event in enumerate(scenario.events):
            where = f"event.{i} ({event.kind})"
            if isinstance(event, StopSkipped) and event.stop not in day_stops:
                raise self.error(where, f"{event.stop!r} is not visited on {scenario.day.date}")
            if isinstance(event, TrafficLight | DriveBy) and event.stop not in {
                s.id for s in self.itinerary.stops
            }:
                raise self.error(where, f"no stop {event.stop!r} in the itinerary")
            if isinstance(event, TrafficLight) and event.stop not in visited:
                raise self.error(where, f"the bus does not stop at {event.stop!r} that day")
            if isinstance(event, DriveBy) and event.on_way_to not in visited | {DEPOT}:
                raise self.error(
                    where, f"on_way_to {event.on_way_to!r} is neither 'depot' nor a stop visited"
                )
            if isinstance(event, LateDeparture) and event.place not in visited | {DEPOT}:
                raise self.error(
                    where, f"place {event.place!r} is neither 'depot' nor a stop visited"
                )
            if isinstance(event, TrafficJam):
                start = self.check_time(where, event.at)
                end = start + event.duration_min * 60
                jams.append(SpeedCap(start, end, event.speed_kmh * KMH))
                happenings.append(
                    Happening(start, f"traffic jam: at most {event.speed_kmh:.0f} km/h")
                )
                happenings.append(Happening(end, "traffic jam clears"))
            elif isinstance(event, FridgeFailure):
                start = self.check_time(where, event.at)
                fridge.append(FridgeAction(start, "fail"))
                happenings.append(Happening(start, "fridge compressor fails"))
                if event.repair_at is not None:
                    end = self.check_time(where, event.repair_at)
                    fridge.append(FridgeAction(end, "repair"))
                    happenings.append(Happening(end, "fridge compressor repaired"))
            elif isinstance(event, GpsOutage):
                start = self.check_time(where, event.at)
                outages.append(Window(start, start + event.duration_min * 60))
                happenings.append(Happening(start, "GPS receiver loses its fix"))
                happenings.append(Happening(outages[-1].end_s, "GPS fix is back"))
            elif isinstance(event, NetworkLoss):
                start = self.check_time(where, event.at)
                losses.append(Window(start, start + event.duration_min * 60))
                happenings.append(Happening(start, "mobile network lost", "network_down"))
                happenings.append(Happening(losses[-1].end_s, "mobile network back", "network_up"))
            elif isinstance(event, LowBattery):
                start = self.check_time(where, event.at)
                loads.append((Window(start, start + event.duration_min * 60), event.load_w))
                happenings.append(
                    Happening(start, f"{event.load_w:.0f} W more on the auxiliary battery")
                )
                happenings.append(Happening(loads[-1][0].end_s, "extra load switched off"))

        phases, consultations = self.drive_day(visits, jams, happenings)
        for v in visits:
            if v.skipped:
                happenings.append(
                    Happening(
                        v.scheduled_arrival_s,
                        f"skips {v.stop.name} (scheduled {v.slot.arrive:%H:%M})",
                    )
                )
        fridge += self.door_openings(consultations)
        battery_ah = setup.battery_ah or (
            self.vehicle.aux_battery_kwh * 1000 / NOMINAL_BATTERY_V
            if self.vehicle.aux_battery_kwh
            else DEFAULT_BATTERY_AH
        )
        return DayPlan(
            scenario=scenario,
            vehicle=self.vehicle,
            itinerary=self.itinerary,
            start=self.start,
            end_s=self.end_s,
            phases=tuple(phases),
            visits=tuple(self.visits_done),
            consultations=tuple(consultations),
            happenings=tuple(sorted(happenings, key=lambda h: h.t_s)),
            fridge_actions=tuple(sorted(fridge, key=lambda a: a.t_s)),
            gps_outages=tuple(outages),
            network_losses=tuple(losses),
            extra_loads=tuple(loads),
            battery_ah=battery_ah,
        )

    def road(self, origin: Place, through: Sequence[Place], destination: Place) -> Road:
        kind: RoadKind | None = None
        for road in self.scenario.roads:
            if set(road.between) == {origin.name, destination.name}:
                kind = road.kind
        return Road([origin, *through, destination], self.towns, kind)

    def drive_day(
        self, visits: list[PlannedVisit], jams: list[SpeedCap], happenings: list[Happening]
    ) -> tuple[list[Phase], list[Window]]:
        scenario, setup = self.scenario, self.scenario.vehicle
        early = scenario.day.early_min * 60
        minimum = scenario.day.min_consultation_min * 60
        here, here_key = self.depot, DEPOT
        parked_since, ready_at, course = 0.0, 0.0, 0.0
        phases: list[Phase] = []
        consultations: list[Window] = []
        self.visits_done.clear()
        targets: list[PlannedVisit | None] = [v for v in visits if not v.skipped] + [None]
        for target in targets:
            dest = self.depot if target is None else self.place(target.stop.id)
            dest_key = DEPOT if target is None else target.stop.id
            through = [
                self.place(e.stop)
                for e in scenario.events
                if isinstance(e, DriveBy) and e.on_way_to == dest_key
            ]
            road = self.road(here, through, dest)
            plan_drive = drive(road, 0.0, accel_mps2=setup.accel_mps2, brake_mps2=setup.brake_mps2)
            leave = ready_at
            if target is not None:
                leave = max(leave, target.scheduled_arrival_s - plan_drive.duration_s - early)
            delay = sum(
                e.delay_min * 60
                for e in scenario.events
                if isinstance(e, LateDeparture) and e.place == here_key
            )
            leave += delay
            if road.length_m == 0.0 and target is not None:
                # Already there (a visit at the depot): the bus has been resting since then.
                done, end = self.finish_visit(target, parked_since, minimum)
                self.visits_done.append(done)
                consultations.append(Window(max(parked_since, target.scheduled_arrival_s), end))
                ready_at, here_key = end, dest_key
                continue
            late = f" ({delay / 60:.0f} min late)" if delay else ""
            happenings.append(Happening(leave, f"leaves {self.label(here_key)}{late}"))
            phases.append(Parked(here, parked_since, leave, course))
            self.mark_set_off(here_key, leave)
            lights = [
                e for e in scenario.events if isinstance(e, TrafficLight) and e.stop == dest_key
            ]
            holds = []
            if target is not None:
                for light in lights:
                    # Just inside the circle: a rest in the zone that is not an arrival.
                    edge = target.stop.radius_m - LIGHT_INSIDE_EDGE_M
                    holds.append(Hold(road.distance_where(dest, edge, road.length_m), light.wait_s))
            trajectory = drive(
                road,
                leave,
                accel_mps2=setup.accel_mps2,
                brake_mps2=setup.brake_mps2,
                holds=holds,
                caps=jams,
            )
            driving = Driving(here_key, dest_key, road, trajectory, tuple(p.name for p in through))
            phases.append(driving)
            self.tell_drive(driving, target, happenings)
            arrival = trajectory.end_s
            course = road.courses[-1] if road.courses else course
            here, here_key, parked_since = dest, dest_key, arrival
            if target is None:
                happenings.append(Happening(arrival, "back at the depot"))
                ready_at = arrival
            else:
                done, end = self.finish_visit(target, arrival, minimum)
                self.visits_done.append(done)
                consultations.append(Window(arrival, end))
                happenings.append(Happening(end, f"consultations at {target.stop.name} end"))
                ready_at = end
        phases.append(Parked(here, parked_since, max(self.end_s, parked_since) + 1.0, course))
        for v in visits:
            if v.skipped:
                self.visits_done.append(v)
        self.visits_done.sort(key=lambda v: v.scheduled_arrival_s)
        return phases, consultations

    @staticmethod
    def finish_visit(
        visit: PlannedVisit, arrival: float, minimum: float
    ) -> tuple[PlannedVisit, float]:
        end = max(visit.scheduled_departure_s, arrival + minimum)
        return replace(visit, arrival_s=arrival, consultation_end_s=end), end

    def mark_set_off(self, here_key: str, leave: float) -> None:
        if here_key == DEPOT:
            return
        for i in range(len(self.visits_done) - 1, -1, -1):
            v = self.visits_done[i]
            if v.stop.id == here_key and v.set_off_s is None:
                self.visits_done[i] = replace(v, set_off_s=leave)
                return

    def label(self, key: str) -> str:
        if key == DEPOT:
            return f"the depot at {self.itinerary.stop(self.vehicle.depot).name}"
        return self.itinerary.stop(key).name

    def tell_drive(
        self, driving: Driving, target: PlannedVisit | None, happenings: list[Happening]
    ) -> None:
        road, trajectory = driving.road, driving.trajectory
        for name in driving.through:
            stop = self.itinerary.stop(name)
            for t, s in zip(trajectory.times, trajectory.distances, strict=True):
                lat, lon, _ = road.at(s)
                if haversine_m(lat, lon, stop.lat, stop.lon) <= stop.radius_m:
                    happenings.append(
                        Happening(t, f"drives through {stop.name}'s zone without stopping")
                    )
                    break
        for start, end, _ in trajectory.rests():
            name = target.stop.name if target is not None else "the depot"
            happenings.append(
                Happening(start, f"red light at the edge of {name}'s zone ({end - start:.0f} s)")
            )
        if target is not None:
            delay = (trajectory.end_s - target.scheduled_arrival_s) / 60
            happenings.append(
                Happening(
                    trajectory.end_s,
                    f"arrives at {target.stop.name} "
                    f"(scheduled {target.slot.arrive:%H:%M}, {delay:+.1f} min)",
                )
            )

    def door_openings(self, consultations: Sequence[Window]) -> list[FridgeAction]:
        per_hour = self.scenario.vehicle.door_openings_per_hour
        actions: list[FridgeAction] = []
        if per_hour <= 0:
            return actions
        rng = random.Random(self.scenario.seed * 7919 + 17)
        rate = per_hour / 3600.0
        for window in consultations:
            t = window.start_s + rng.expovariate(rate)
            while t < window.end_s:
                closes = min(window.end_s, t + rng.uniform(*DOOR_OPEN_S))
                actions.append(FridgeAction(t, "open_door"))
                actions.append(FridgeAction(closes, "close_door"))
                t = closes + rng.expovariate(rate)
        return actions


def plan_day(scenario: Scenario, itinerary: Itinerary) -> DayPlan:
    """The scenario's day for its vehicle; :class:`ScenarioError` if it does not fit the
    itinerary (unknown vehicle, no visit that day, an event naming a stop not visited)."""
    return _Planner(scenario, itinerary).plan()
