"""Reads the engine through an OBD-II adapter (ELM327 and its clones) on a serial port:
fuel rate (PID 5E), fuel tank level (PID 2F) and odometer (PID A6), polled in mode 01.

The ELM327's AT commands are spoken here by hand rather than through the ``obd`` package:
three PIDs need a few lines of decoding, while ``obd`` probes the port with dozens of
commands at connection, converts every value through ``pint`` and runs its own polling
thread, none of which fits a reader under this agent's supervisor (one thread, one port,
reopened with back-off, counters per device).

Decoding is pure (:func:`decode_response`); :class:`ObdReader` owns the port.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import serial
from pydantic import ValidationError

from edge_agent.counters import DeviceCounters
from edge_agent.serial_link import keep_port_open
from firmware_config.obd import ObdPortConfig
from protocol.clock import Clock, SystemClock
from protocol.models import ObdSample

log = logging.getLogger(__name__)

PROMPT: Final = b">"
# Echo off, no line feeds, no spaces, no headers, protocol chosen by the adapter.
SETUP: Final = ("ATZ", "ATE0", "ATL0", "ATS0", "ATH0", "ATSP0")
# Answers meaning "no value now" (engine off, PID not supported, bus asleep).
NO_VALUE: Final = ("NODATA", "STOPPED", "UNABLETOCONNECT", "CANERROR", "BUSINIT", "?")


@dataclass(frozen=True)
class Pid:
    code: int
    field: str
    size: int
    decode: Callable[[bytes], float]


PIDS: Final = (
    # SAE J1979: fuel rate (A*256+B)/20 L/h; tank level 100*A/255 %; odometer ABCD/10 km.
    Pid(0x5E, "fuel_rate_l_per_h", 2, lambda d: (d[0] * 256 + d[1]) / 20),
    Pid(0x2F, "fuel_level_pct", 1, lambda d: round(100 * d[0] / 255, 1)),
    Pid(0xA6, "odometer_km", 4, lambda d: int.from_bytes(d[:4], "big") / 10),
)


def decode_response(pid: Pid, text: str) -> float | None:
    """The value of one mode 01 answer (``41 5E 01 90`` with or without spaces, maybe
    preceded by ``SEARCHING...``), or None when the adapter has no value to give. Raises
    ValueError for an answer that is not one."""
    lines = [ln.replace(" ", "").upper() for ln in text.replace("\r", "\n").split("\n")]
    lines = [ln for ln in lines if ln and ln not in {"SEARCHING...", ">"}]
    if any(ln.rstrip(".") in NO_VALUE or ln.startswith(NO_VALUE) for ln in lines):
        return None
    wanted = f"41{pid.code:02X}"
    for line in lines:
        if line.startswith(wanted):
            try:
                data = bytes.fromhex(line[len(wanted) :])
            except ValueError:
                raise ValueError(f"PID {pid.code:02X}: not hexadecimal: {line!r}") from None
            if len(data) < pid.size:
                raise ValueError(f"PID {pid.code:02X}: {len(data)} bytes, {pid.size} needed")
            return pid.decode(data)
    raise ValueError(f"PID {pid.code:02X}: no answer to it in {text[:80]!r}")


class ObdReader:
    """Polls the adapter every ``config.interval_s`` and calls ``on_sample`` with what
    the engine answered; nothing when it answers nothing (engine off). Reopens the port
    with back-off when it disappears, and sets the adapter up again each time."""

    def __init__(
        self,
        config: ObdPortConfig,
        on_sample: Callable[[ObdSample], None],
        counters: DeviceCounters | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._config = config
        self._on_sample = on_sample
        self.counters = counters or DeviceCounters()
        self._clock: Clock = clock or SystemClock()

    def run(self, stop: threading.Event) -> None:
        keep_port_open(
            "OBD-II",
            self._config.port,
            self._config.baudrate,
            lambda port: self._read(port, stop),
            stop=stop,
            counters=self.counters,
        )

    def _ask(self, port: serial.Serial, command: str, stop: threading.Event) -> str:
        """Send one command; the answer up to the adapter's prompt. Raises TimeoutError
        when no prompt comes within ``config.timeout_s``."""
        port.reset_input_buffer()
        port.write(command.encode("ascii") + b"\r")
        answer = bytearray()
        waited = 0.0
        while PROMPT not in answer:
            if stop.is_set():
                break
            chunk = port.read(max(1, port.in_waiting))
            if chunk:
                answer += chunk
                continue
            waited += port.timeout or 0.2
            if waited >= self._config.timeout_s:
                raise TimeoutError(f"no answer to {command} in {self._config.timeout_s} s")
        return answer.split(PROMPT, 1)[0].decode("ascii", errors="replace")

    def _read(self, port: serial.Serial, stop: threading.Event) -> None:
        for command in SETUP:
            self._ask(port, command, stop)
        while not stop.is_set():
            t = self._clock.now()
            values: dict[str, float] = {}
            for pid in PIDS:
                try:
                    value = decode_response(pid, self._ask(port, f"01{pid.code:02X}", stop))
                except ValueError as exc:
                    self.counters.add("obd_bad_answers")
                    log.debug("OBD-II: %s", exc)
                    continue
                if value is not None:
                    values[pid.field] = value
            if values:
                self._deliver(t, values)
            else:
                self.counters.add("obd_no_data")
            stop.wait(self._config.interval_s)

    def _deliver(self, t: object, values: dict[str, float]) -> None:
        try:
            sample = ObdSample.model_validate({"t": t, **values})
        except ValidationError:
            self.counters.add("obd_out_of_range")
            return
        try:
            self._on_sample(sample)
        except Exception:
            self.counters.add("obd_delivery_errors")
            log.exception("OBD-II sample consumer failed")
