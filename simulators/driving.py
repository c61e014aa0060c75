"""How a bus drives one road: a simple driver who keeps to the limits and brakes in time.

Integrated in fixed time steps: each step the driver aims for the road's limit (or a
jam's crawl), lowered so that every bend, slower zone, red light and the end of the road
can still be reached at its speed with comfortable braking; acceleration and braking are
bounded. Pure: the same road and events give the same trajectory.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from simulators.roads import Road

STEP_S: Final = 0.5
_SNAP_M: Final = 0.5
_MAX_DRIVE_S: Final = 24 * 3600.0


@dataclass(frozen=True)
class Hold:
    """The bus stops ``at_m`` along the road and waits ``wait_s`` (a red light)."""

    at_m: float
    wait_s: float


@dataclass(frozen=True)
class SpeedCap:
    """Between ``start_s`` and ``end_s`` (seconds of the day) the bus drives at most
    ``limit_mps`` (a traffic jam)."""

    start_s: float
    end_s: float
    limit_mps: float


@dataclass(frozen=True)
class Trajectory:
    """Distance along the road and speed, sampled every step (and at both ends of a hold)."""

    times: tuple[float, ...]
    distances: tuple[float, ...]
    speeds: tuple[float, ...]

    @property
    def start_s(self) -> float:
        return self.times[0]

    @property
    def end_s(self) -> float:
        return self.times[-1]

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def at(self, t: float) -> tuple[float, float]:
        """Distance and speed at ``t`` (seconds of the day), interpolated between samples."""
        if t <= self.times[0]:
            return self.distances[0], self.speeds[0]
        if t >= self.times[-1]:
            return self.distances[-1], self.speeds[-1]
        i = bisect_right(self.times, t) - 1
        t0, t1 = self.times[i], self.times[i + 1]
        f = (t - t0) / (t1 - t0) if t1 > t0 else 0.0
        s = self.distances[i] + f * (self.distances[i + 1] - self.distances[i])
        v = self.speeds[i] + f * (self.speeds[i + 1] - self.speeds[i])
        return s, v

    def rests(self) -> list[tuple[float, float, float]]:
        """Where the bus stood still between leaving and arriving: (start, end, distance)."""
        out: list[tuple[float, float, float]] = []
        for i in range(1, len(self.times) - 1):
            standing = (
                self.speeds[i] == 0.0
                and self.speeds[i + 1] == 0.0
                and self.times[i + 1] > self.times[i]
                and self.distances[i + 1] == self.distances[i]
            )
            if not standing:
                continue
            if out and out[-1][1] == self.times[i]:
                out[-1] = (out[-1][0], self.times[i + 1], self.distances[i])
            else:
                out.append((self.times[i], self.times[i + 1], self.distances[i]))
        return out


def _constraints(road: Road, holds: Sequence[Hold]) -> list[tuple[float, float]]:
    """Points ahead and the speed the bus may have there."""
    points = [(b.at_m, b.speed_mps) for b in road.bends]
    points += [
        (z.start_m, z.limit_mps)
        for prev, z in itertools.pairwise(road.zones)
        if z.limit_mps < prev.limit_mps
    ]
    points += [(h.at_m, 0.0) for h in holds]
    points.append((road.length_m, 0.0))
    return sorted(points)


def drive(
    road: Road,
    start_s: float,
    *,
    accel_mps2: float,
    brake_mps2: float,
    holds: Sequence[Hold] = (),
    caps: Sequence[SpeedCap] = (),
) -> Trajectory:
    """The bus sets off at ``start_s`` (seconds of the day) and drives to the road's end."""
    length = road.length_m
    pending = sorted((h for h in holds if 0.0 < h.at_m < length), key=lambda h: h.at_m)
    constraints = _constraints(road, pending)
    t, s, v = start_s, 0.0, 0.0
    times, distances, speeds = [t], [s], [v]
    while s < length:
        if t - start_s > _MAX_DRIVE_S:
            raise ValueError(f"a drive of {length:.0f} m did not end within a day")
        if pending and s >= pending[0].at_m and v == 0.0:
            t += pending.pop(0).wait_s
            times.append(t)
            distances.append(s)
            speeds.append(0.0)
            constraints = _constraints(road, pending)
            continue
        target = road.limit_at(s)
        for cap in caps:
            if cap.start_s <= t < cap.end_s:
                target = min(target, cap.limit_mps)
        # Plan from where the bus may be after this step, so that it can still brake in time
        # for every point ahead (and is already slow enough once it has passed one).
        reach = s + (v + accel_mps2 * STEP_S) * STEP_S
        for at, speed in constraints:
            if at > s:
                room = max(0.0, at - reach)
                target = min(target, math.sqrt(speed * speed + 2.0 * brake_mps2 * room))
        if v < target:
            v_next = min(target, v + accel_mps2 * STEP_S)
        else:
            v_next = max(target, v - brake_mps2 * STEP_S)
        step = 0.5 * (v + v_next) * STEP_S
        stop_at = pending[0].at_m if pending else length
        if stop_at - s <= max(_SNAP_M, step):
            s, v_next = stop_at, 0.0
        else:
            s += step
        v = v_next
        t += STEP_S
        times.append(t)
        distances.append(s)
        speeds.append(v)
    return Trajectory(tuple(times), tuple(distances), tuple(speeds))
