"""An ELM327 OBD-II adapter on a pseudo-terminal, in front of a diesel engine: it answers
the AT commands an application sets it up with, and mode 01 requests for the engine fuel
rate (5E), the fuel tank level (2F) and the odometer (A6), as a real adapter does — echo
until ``ATE0``, spaces until ``ATS0``, ``SEARCHING...`` before the first answer after a
reset, ``NO DATA`` while the engine is off, ``?`` for what it does not understand.

The engine's state is set by the test or scenario (:meth:`Engine.set`); the tank empties
and the odometer turns with what it burns and drives between two requests.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Final

from protocol.clock import Clock, SystemClock
from simulators.serial_port import VirtualSerialPort

PROMPT: Final = b"\r\r>"


@dataclass
class EngineState:
    running: bool = False
    fuel_rate_l_per_h: float = 0.0
    speed_kmh: float = 0.0
    tank_l: float = 60.0
    tank_capacity_l: float = 80.0
    odometer_km: float = 123_456.7


class Engine:
    """A diesel engine whose fuel and distance add up over time."""

    def __init__(self, clock: Clock | None = None, state: EngineState | None = None) -> None:
        self._clock = clock or SystemClock()
        self._state = state or EngineState()
        self._at = self._clock.now()
        self._lock = threading.Lock()
        self.burnt_l = 0.0

    def _advance(self) -> EngineState:
        now = self._clock.now()
        hours = max(0.0, (now - self._at).total_seconds() / 3600)
        self._at = now
        s = self._state
        if s.running:
            burnt = s.fuel_rate_l_per_h * hours
            self.burnt_l += burnt
            s.tank_l = max(0.0, s.tank_l - burnt)
            s.odometer_km += s.speed_kmh * hours
        return s

    def set(self, *, running: bool, fuel_rate_l_per_h: float = 0.0, speed_kmh: float = 0.0) -> None:
        with self._lock:
            s = self._advance()
            s.running = running
            s.fuel_rate_l_per_h = fuel_rate_l_per_h if running else 0.0
            s.speed_kmh = speed_kmh if running else 0.0

    def read(self) -> EngineState:
        with self._lock:
            s = self._advance()
            return EngineState(**vars(s))


def _pid_data(pid: str, s: EngineState) -> bytes | None:
    if pid == "5E":
        raw = min(0xFFFF, round(s.fuel_rate_l_per_h * 20))
        return raw.to_bytes(2, "big")
    if pid == "2F":
        return bytes([min(255, round(255 * s.tank_l / s.tank_capacity_l))])
    if pid == "A6":
        return min(0xFFFFFFFF, round(s.odometer_km * 10)).to_bytes(4, "big")
    return None


class Elm327Simulator:
    """The adapter: a thread answering on :attr:`path` until :meth:`stop`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._port = VirtualSerialPort()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="elm327", daemon=True)
        self._echo = True
        self._spaces = True
        self._searched = False
        self.requests: list[str] = []
        # Set by a test: answer every request with this garbage instead.
        self.garbage: bytes | None = None

    @property
    def path(self) -> str:
        return self._port.path

    def start(self) -> Elm327Simulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._port.close()

    def _run(self) -> None:
        pending = b""
        while not self._stop.is_set():
            pending += self._port.read(timeout=0.1)
            while b"\r" in pending:
                line, pending = pending.split(b"\r", 1)
                command = line.decode("ascii", errors="replace").strip().upper()
                if command:
                    self._port.write(self._answer(command))

    def _answer(self, command: str) -> bytes:
        self.requests.append(command)
        echo = command.encode() + b"\r" if self._echo else b""
        if self.garbage is not None:
            return echo + self.garbage + PROMPT
        return echo + self._reply(command.replace(" ", "")).encode() + PROMPT

    def _reply(self, command: str) -> str:
        if command in ("ATZ", "ATWS"):
            self._echo, self._spaces, self._searched = True, True, False
            return "\r\rELM327 v1.5"
        if command == "ATE0":
            self._echo = False
            return "OK"
        if command == "ATS0":
            self._spaces = False
            return "OK"
        if command in ("ATL0", "ATH0", "ATSP0", "ATE1", "ATL1", "ATH1", "ATS1"):
            return "OK"
        if len(command) == 4 and command.startswith("01"):
            pid = command[2:]
            state = self.engine.read()
            data = _pid_data(pid, state)
            if data is None or not state.running:
                return self._searching() + "NO DATA"
            sep = " " if self._spaces else ""
            body = sep.join(f"{b:02X}" for b in bytes([0x41, int(pid, 16)]) + data)
            return self._searching() + body
        return "?"

    def _searching(self) -> str:
        if self._searched:
            return ""
        self._searched = True
        return "SEARCHING...\r"
