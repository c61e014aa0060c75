"""Reads a GPS receiver on a serial port (pyserial) and hands out fixes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import serial
from pynmeagps import NMEAMessageError, NMEAStreamError, NMEATypeError

from edge_agent.counters import DeviceCounters
from edge_agent.nmea import EpochAssembler, NmeaFramer, parse_sentence
from edge_agent.serial_link import keep_port_open
from edge_agent.supervisor import Supervisor
from firmware_config.agent import GpsPortConfig
from protocol.clock import Clock
from protocol.models import GpsSample

log = logging.getLogger(__name__)

# What pynmeagps raises, beside its parse errors, for a sentence whose checksum is right
# but whose shape it refuses (a field of the wrong type, a proprietary layout).
_REFUSED_SHAPES = (NMEATypeError, NMEAMessageError, NMEAStreamError)


def read_sentence(sentence: bytes, counters: DeviceCounters) -> Any | None:
    """One sentence parsed, or None; any sentence the library refuses is counted as
    ``nmea_malformed`` and skipped, so one odd sentence never stops the reader."""
    try:
        return parse_sentence(sentence, counters)
    except _REFUSED_SHAPES:
        counters.add("nmea_malformed")
        return None


class GpsReader:
    """Reads NMEA from ``config.port``; reopens the port with back-off if it disappears
    (USB unplugged) and never gives up. :meth:`run` is the reading loop, for a
    :class:`~edge_agent.supervisor.Supervisor`; :meth:`start` runs it under one of its own."""

    def __init__(
        self,
        config: GpsPortConfig,
        on_fix: Callable[[GpsSample], None],
        counters: DeviceCounters | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._config = config
        # Dates the epochs of a receiver that never sends a date (GGA or GNS alone).
        self._clock = clock
        self._on_fix = on_fix
        self.counters = counters or DeviceCounters()
        self._supervisor: Supervisor | None = None

    def start(self) -> None:
        self._supervisor = Supervisor()
        self._supervisor.add("gps", self.run, self.counters)
        self._supervisor.start()

    def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.stop(timeout_s=2.0)

    def run(self, stop: threading.Event) -> None:
        keep_port_open(
            "GPS",
            self._config.port,
            self._config.baudrate,
            lambda port: self._read(port, stop),
            stop=stop,
            counters=self.counters,
        )

    def _read(self, port: serial.Serial, stop: threading.Event) -> None:
        framer = NmeaFramer(self.counters)
        assembler = EpochAssembler(self.counters, self._clock)
        while not stop.is_set():
            data = port.read(max(1, port.in_waiting))
            if not data:
                # The receiver is quiet between epochs: the epoch in progress is complete.
                self._emit(assembler.flush())
                continue
            for sentence in framer.feed(data):
                msg = read_sentence(sentence, self.counters)
                if msg is not None:
                    self._emit(assembler.feed(msg))

    def _emit(self, fix: GpsSample | None) -> None:
        if fix is not None:
            self._on_fix(fix)
