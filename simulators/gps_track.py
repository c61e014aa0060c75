"""What the bus's GPS receiver reports through a scenario's day: the true motion plus the
receiver's errors.

Position errors are a first-order Gauss-Markov process per axis (the usual model of GNSS
error: a few metres that wander slowly), so a parked bus's fixes drift around its spot
rather than jumping. A parked receiver still reports a few centimetres per second of
speed. During an outage the receiver reports epochs without a fix. Everything is drawn
from the scenario's seed and indexed by whole seconds of the day, so the same epoch
time always gives the same report, whatever was asked before.
"""

from __future__ import annotations

import math
import random
from datetime import datetime
from typing import Final

from simulators.day_plan import DayPlan
from simulators.geo import offset
from simulators.nmea_out import Epoch

BASE_ALTITUDE_M: Final = 120.0


class GpsErrorModel:
    """North and east errors in metres, one AR(1) step per second of the day."""

    def __init__(self, seed: int, sigma_m: float, tau_s: float) -> None:
        self._rng = random.Random(seed)
        self._sigma = sigma_m
        self._phi = math.exp(-1.0 / tau_s)
        self._kick = sigma_m * math.sqrt(1.0 - self._phi**2)
        self._north = [self._rng.gauss(0.0, sigma_m)]
        self._east = [self._rng.gauss(0.0, sigma_m)]

    def _extend(self, index: int) -> None:
        while len(self._north) <= index:
            self._north.append(self._phi * self._north[-1] + self._rng.gauss(0.0, self._kick))
            self._east.append(self._phi * self._east[-1] + self._rng.gauss(0.0, self._kick))

    def at(self, elapsed_s: float) -> tuple[float, float]:
        if self._sigma == 0.0 or elapsed_s < 0:
            return 0.0, 0.0
        i = int(elapsed_s)
        self._extend(i + 1)
        f = elapsed_s - i
        north = self._north[i] + f * (self._north[i + 1] - self._north[i])
        east = self._east[i] + f * (self._east[i + 1] - self._east[i])
        return north, east


class ScenarioGpsTrack:
    """The :class:`~simulators.gps_device.EpochSource` of a scenario's receiver."""

    def __init__(self, plan: DayPlan) -> None:
        self.plan = plan
        setup = plan.scenario.gps
        self._seed = plan.scenario.seed
        self._errors = GpsErrorModel(self._seed, setup.noise_m, setup.noise_tau_s)

    def epoch_at(self, t: datetime) -> Epoch:
        t_s = self.plan.seconds_of(t)
        if not self.plan.has_fix(t_s):
            return Epoch(t, 0.0, 0.0, 0.0, 0.0, fix=False, sats=0, hdop=99.99)
        motion = self.plan.motion_at(t_s)
        north, east = self._errors.at(t_s)
        lat, lon = offset(motion.lat, motion.lon, north, east)
        rng = random.Random((self._seed << 24) ^ round(t_s * 10))
        if motion.speed_mps > 0.0:
            speed = max(0.0, motion.speed_mps + rng.gauss(0.0, 0.1))
            course = (motion.course_deg + rng.gauss(0.0, 1.0)) % 360.0
        else:
            # At rest the receiver sees its own noise as a little motion in any direction.
            speed = abs(rng.gauss(0.0, 0.05))
            course = rng.uniform(0.0, 360.0)
        # Satellites in view change slowly as they rise and set.
        sats = 9 + round(2.0 * math.sin(t_s / 1700.0 + self._seed))
        hdop = round(0.7 + 3.0 / sats + rng.uniform(0.0, 0.1), 2)
        alt = BASE_ALTITUDE_M + 1.5 * north / max(self.plan.scenario.gps.noise_m, 1.0)
        return Epoch(t, lat, lon, speed, course, alt_m=alt, sats=sats, hdop=hdop)
