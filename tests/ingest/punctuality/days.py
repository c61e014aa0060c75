"""A simulated day of one bus as GPS samples: it waits at its depot, drives each leg with
``simulators.route.DriveRoute`` so as to reach each stop at the time asked, stays there,
and drives back to the depot."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ingest.itinerary import Itinerary
from protocol.models import GpsBatch, GpsSample
from simulators.route import DriveRoute, Waypoint

METRES_PER_DEGREE = 111_195.0


@dataclass(frozen=True)
class Call:
    """The bus at ``stop`` from ``arrival`` to ``departure`` (UTC)."""

    stop: str
    arrival: datetime
    departure: datetime


@dataclass(frozen=True)
class _Segment:
    start: datetime
    end: datetime
    route: DriveRoute | None
    at: Waypoint


def simulated_day(
    itinerary: Itinerary,
    vehicle: str,
    calls: Sequence[Call],
    *,
    leave_depot_before: timedelta = timedelta(minutes=30),
    back_home_for: timedelta = timedelta(minutes=20),
    step_s: int = 5,
    seed: int = 7,
) -> list[GpsSample]:
    """Samples every ``step_s`` seconds, with a few metres of seeded jitter."""
    depot = itinerary.stop(itinerary.vehicle(vehicle).depot)
    here = Waypoint(depot.id, depot.lat, depot.lon)
    segments: list[_Segment] = []
    t = calls[0].arrival - leave_depot_before
    for call in [*calls, None]:
        stop = depot if call is None else itinerary.stop(call.stop)
        there = Waypoint(stop.id, stop.lat, stop.lon)
        route = DriveRoute([here, there], dwell_s=0.0, loop=False)
        drive = timedelta(seconds=route.period_s)
        arrive = call.arrival if call is not None else t + drive
        leave = arrive - drive
        if leave < t:
            raise ValueError(f"cannot reach {stop.id} by {arrive}: the drive takes {drive}")
        segments.append(_Segment(t, leave, None, here))
        segments.append(_Segment(leave, arrive, route, there))
        t = call.departure if call is not None else arrive + back_home_for
        segments.append(_Segment(arrive, t, None, there))
        here = there
    rng = random.Random(seed)
    samples: list[GpsSample] = []
    now = segments[0].start
    end = segments[-1].end
    i = 0
    while now < end:
        while segments[i].end <= now:
            i += 1
        seg = segments[i]
        if seg.route is None:
            lat, lon, speed, course = seg.at.lat, seg.at.lon, abs(rng.gauss(0, 0.1)), 0.0
        else:
            state = seg.route.state_at((now - seg.start).total_seconds())
            lat, lon, speed, course = state.lat, state.lon, state.speed_mps, state.course_deg
        jitter_lat = rng.gauss(0, 2.0) / METRES_PER_DEGREE
        jitter_lon = rng.gauss(0, 2.0) / (METRES_PER_DEGREE * math.cos(math.radians(lat)))
        samples.append(
            GpsSample(
                t=now,
                lat=lat + jitter_lat,
                lon=lon + jitter_lon,
                speed_mps=round(speed, 2),
                course_deg=round(course, 1) % 360,
                fix_mode=3,
                sats=9,
                hdop=0.9,
            )
        )
        now += timedelta(seconds=step_s)
    return samples


def batches_of(vehicle: str, samples: Sequence[GpsSample], size: int) -> list[GpsBatch]:
    return [
        GpsBatch(vehicle=vehicle, seq=n, samples=list(samples[i : i + size]))
        for n, i in enumerate(range(0, len(samples), size))
    ]
