"""Reads a GPS receiver on a serial port (pyserial) and hands out fixes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import serial

from edge_agent.counters import DeviceCounters
from edge_agent.nmea import EpochAssembler, NmeaFramer, parse_sentence
from edge_agent.serial_link import keep_port_open
from firmware_config.agent import GpsPortConfig
from protocol.clock import Clock
from protocol.models import GpsSample

log = logging.getLogger(__name__)


class GpsReader:
    """A thread that reads NMEA from ``config.port``; reopens the port with back-off if it
    disappears (USB unplugged) and never gives up."""

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
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gps-reader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)

    def _run(self) -> None:
        keep_port_open(
            "GPS",
            self._config.port,
            self._config.baudrate,
            self._read,
            stop=self._stop,
            counters=self.counters,
        )

    def _read(self, port: serial.Serial) -> None:
        framer = NmeaFramer(self.counters)
        assembler = EpochAssembler(self.counters, self._clock)
        while not self._stop.is_set():
            data = port.read(max(1, port.in_waiting))
            if not data:
                # The receiver is quiet between epochs: the epoch in progress is complete.
                self._emit(assembler.flush())
                continue
            for sentence in framer.feed(data):
                msg = parse_sentence(sentence, self.counters)
                if msg is not None:
                    self._emit(assembler.feed(msg))

    def _emit(self, fix: GpsSample | None) -> None:
        if fix is not None:
            self._on_fix(fix)
