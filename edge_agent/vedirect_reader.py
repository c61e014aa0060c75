"""Reads a Victron VE.Direct device on a serial port (pyserial) and hands out samples."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import serial

from edge_agent.counters import DeviceCounters
from edge_agent.serial_link import keep_port_open
from edge_agent.supervisor import Supervisor
from edge_agent.vedirect import VeDirectFramer, decode_block, to_energy_sample
from firmware_config.vedirect import VeDirectPortConfig
from protocol.clock import Clock, SystemClock
from protocol.models import EnergySample

log = logging.getLogger(__name__)


class VeDirectReader:
    """A thread that reads VE.Direct TEXT from ``config.port`` and calls ``on_sample`` once
    per valid block carrying readings; reopens the port with back-off if it disappears
    (USB unplugged) and never gives up.

    Samples are stamped with ``clock`` when their block's checksum byte arrives: the
    protocol carries no time of its own. :meth:`run` is the reading loop, for a
    :class:`~edge_agent.supervisor.Supervisor`; :meth:`start` runs it under one of its own.
    """

    def __init__(
        self,
        config: VeDirectPortConfig,
        on_sample: Callable[[EnergySample], None],
        counters: DeviceCounters | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._config = config
        self._on_sample = on_sample
        self.counters = counters or DeviceCounters()
        self._clock: Clock = clock or SystemClock()
        self._warned_kind = False
        self._supervisor: Supervisor | None = None

    def start(self) -> None:
        self._supervisor = Supervisor()
        self._supervisor.add(f"vedirect_{self._config.device}", self.run, self.counters)
        self._supervisor.start()

    def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.stop(timeout_s=2.0)

    @property
    def running(self) -> bool:
        return self._supervisor is not None and all(self._supervisor.alive().values())

    def run(self, stop: threading.Event) -> None:
        keep_port_open(
            f"VE.Direct {self._config.device}",
            self._config.port,
            self._config.baudrate,
            lambda port: self._read(port, stop),
            stop=stop,
            counters=self.counters,
        )

    def _read(self, port: serial.Serial, stop: threading.Event) -> None:
        # A fresh framer per opening: the first block after it may be partial.
        framer = VeDirectFramer(self.counters)
        while not stop.is_set():
            data = port.read(max(1, port.in_waiting))
            if not data:
                continue
            t = self._clock.now()
            for block in framer.feed(data):
                reading = decode_block(block, self.counters)
                if reading is None:
                    continue
                if reading.kind != self._config.device:
                    # Wiring or config mistake: keep the data (it says what it is), but say so.
                    self.counters.add("vedirect_unexpected_device")
                    if not self._warned_kind:
                        self._warned_kind = True
                        log.warning(
                            "VE.Direct port %s is configured as %s but a %s is talking",
                            self._config.port,
                            self._config.device,
                            reading.kind,
                        )
                sample = to_energy_sample(reading, t, self.counters)
                if sample is not None:
                    self._deliver(sample)

    def _deliver(self, sample: EnergySample) -> None:
        try:
            self._on_sample(sample)
        except Exception:
            # A failing consumer must not stop the device being read.
            self.counters.add("vedirect_delivery_errors")
            log.exception("VE.Direct sample consumer failed")
