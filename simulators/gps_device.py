"""A GPS receiver on a virtual serial port, writing the epochs of an :class:`EpochSource`."""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta
from typing import Protocol

from protocol.clock import ScaledClock
from simulators.nmea_out import Epoch, epoch_sentences
from simulators.route import DriveRoute
from simulators.serial_port import VirtualSerialPort


class EpochSource(Protocol):
    def epoch_at(self, t: datetime) -> Epoch:
        """What the receiver reports for the epoch at ``t``."""
        ...


class NmeaReceiverSimulator:
    """Writes one NMEA epoch of ``source`` per ``1 / rate_hz`` of simulated time.

    ``truth`` keeps the last epochs written (time → lat, lon) so tests can compare what
    the system reports with what the receiver said.
    """

    def __init__(
        self,
        source: EpochSource,
        clock: ScaledClock,
        *,
        rate_hz: float = 1.0,
        talker: str = "GP",
        history: int = 7200,
    ) -> None:
        if rate_hz <= 0:
            raise ValueError(f"rate_hz must be positive, got {rate_hz}")
        self.port = VirtualSerialPort()
        self._source = source
        self._clock = clock
        self._period = timedelta(seconds=1.0 / rate_hz)
        self._talker = talker
        self.truth: deque[tuple[datetime, float, float]] = deque(maxlen=history)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gps-sim", daemon=True)

    @property
    def path(self) -> str:
        return self.port.path

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self.port.close()

    def epoch_at(self, t: datetime) -> Epoch:
        return self._source.epoch_at(t)

    def truth_at(self, t: datetime) -> tuple[float, float] | None:
        with self._lock:
            for when, lat, lon in reversed(self.truth):
                if when == t:
                    return lat, lon
        return None

    def _run(self) -> None:
        # Epochs fall on whole multiples of the period, as a receiver's do.
        step = self._period.total_seconds()
        now = self._clock.now()
        micro = int(step * 1_000_000)
        t = now.replace(microsecond=(now.microsecond // micro) * micro if micro < 1_000_000 else 0)
        t += self._period
        while not self._stop.is_set():
            self._clock.sleep_until(t)
            if self._stop.is_set():
                break
            epoch = self.epoch_at(t)
            if epoch.fix:
                with self._lock:
                    self.truth.append((t, epoch.lat, epoch.lon))
            self.port.write(b"".join(epoch_sentences(epoch, self._talker)))
            t += self._period


class _RouteEpochs:
    def __init__(self, route: DriveRoute, origin: datetime, offset_s: float) -> None:
        self._route = route
        self._origin = origin
        self._offset = offset_s

    def epoch_at(self, t: datetime) -> Epoch:
        state = self._route.state_at((t - self._origin).total_seconds() + self._offset)
        return Epoch(t, state.lat, state.lon, state.speed_mps, state.course_deg)


class GpsSimulator(NmeaReceiverSimulator):
    """A receiver moving along a :class:`DriveRoute` (exact positions, always a fix)."""

    def __init__(
        self,
        route: DriveRoute,
        clock: ScaledClock,
        *,
        rate_hz: float = 1.0,
        talker: str = "GP",
        route_offset_s: float = 0.0,
        history: int = 7200,
    ) -> None:
        super().__init__(
            _RouteEpochs(route, clock.now(), route_offset_s),
            clock,
            rate_hz=rate_hz,
            talker=talker,
            history=history,
        )
