"""The medical fridge's sensors as Modbus RTU devices, served by pymodbus's own server.

Two devices share one RS485 line, as on the bus: an SHT20-style temperature/humidity
probe (address 1, input registers 1-2, profile ``sht20-xy-md02``) and an I/O module
with the door's reed contact on discrete input 0 (address 2, profile
``rs485-io-door``). Their readings come from :class:`FridgeThermalModel`.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from pymodbus.client import ModbusSerialClient
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice

from protocol.clock import ScaledClock
from simulators.null_modem import NullModem

STEP_S = 1.0

FC_READ_DISCRETE_INPUTS = 2
FC_READ_INPUT_REGISTERS = 4
PROBE_TEMPERATURE_REGISTER = 1
PROBE_HUMIDITY_REGISTER = 2
DOOR_CONTACT_INPUT = 0


@dataclass(frozen=True)
class ThermalParameters:
    """A small medical fridge in a van; rates are per second of simulated time.

    With these values the compressor runs about 2 minutes in 9, and with the
    compressor stopped the cabinet passes 8 °C some 12 minutes later.
    """

    setpoint_c: float = 5.0
    hysteresis_c: float = 1.0  # compressor starts at setpoint + h, stops at setpoint - h
    ambient_c: float = 22.0
    leak_per_s: float = 1 / 3600  # heat leak through closed walls, toward ambient
    door_leak_per_s: float = 1 / 240  # extra exchange with the cabin while the door is open
    cooling_c_per_s: float = 0.02  # what the running compressor removes
    ambient_humidity_pct: float = 65.0
    resting_humidity_pct: float = 45.0
    dry_humidity_pct: float = 35.0  # the evaporator dries the air while it runs
    humidity_rate_per_s: float = 1 / 120
    door_openings_per_hour: float = 2.0
    door_open_s: tuple[float, float] = (15.0, 90.0)
    probe_noise_c: float = 0.02


@dataclass(frozen=True)
class FridgeState:
    elapsed_s: float
    temp_c: float  # what the probe measures (air temperature plus probe noise)
    air_c: float
    humidity_pct: float
    door_open: bool
    compressor_on: bool
    failed: bool


class FridgeThermalModel:
    """A lumped thermal model stepped in fixed 1 s steps: the same seed gives the same
    history, whatever instants it is asked about. No clock inside."""

    def __init__(
        self,
        params: ThermalParameters | None = None,
        *,
        seed: int = 0,
        random_doors: bool = True,
        initial_temp_c: float | None = None,
    ) -> None:
        self.params = params or ThermalParameters()
        self._rng = random.Random(seed)
        self._random_doors = random_doors
        air = self.params.setpoint_c if initial_temp_c is None else initial_temp_c
        self._state = FridgeState(
            elapsed_s=0.0,
            temp_c=air,
            air_c=air,
            humidity_pct=self.params.resting_humidity_pct,
            door_open=False,
            compressor_on=False,
            failed=False,
        )
        self._door_closes_at: float | None = None
        self._door_held = False
        self.compressor_starts = 0

    @property
    def state(self) -> FridgeState:
        return self._state

    def fail(self) -> None:
        """The compressor stops for good (relay welded open, refrigerant lost)."""
        self._state = replace(self._state, failed=True, compressor_on=False)

    def repair(self) -> None:
        self._state = replace(self._state, failed=False)

    def open_door(self) -> None:
        """Someone opens the door and keeps it open until :meth:`close_door`."""
        self._door_held = True
        self._state = replace(self._state, door_open=True)

    def close_door(self) -> None:
        self._door_held = False
        self._door_closes_at = None
        self._state = replace(self._state, door_open=False)

    def advance_to(self, elapsed_s: float) -> FridgeState:
        while self._state.elapsed_s + STEP_S <= elapsed_s:
            self._step()
        return self._state

    def _step(self) -> None:
        p, s = self.params, self._state
        t = s.elapsed_s + STEP_S
        door_open = self._next_door(t, s.door_open)
        compressor_on = s.compressor_on
        if s.failed:
            compressor_on = False
        elif s.air_c >= p.setpoint_c + p.hysteresis_c and not compressor_on:
            compressor_on = True
            self.compressor_starts += 1
        elif s.air_c <= p.setpoint_c - p.hysteresis_c:
            compressor_on = False
        exchange = p.leak_per_s + (p.door_leak_per_s if door_open else 0.0)
        air = s.air_c + STEP_S * exchange * (p.ambient_c - s.air_c)
        if compressor_on:
            air -= STEP_S * p.cooling_c_per_s
        if door_open:
            humidity_target = p.ambient_humidity_pct
        elif compressor_on:
            humidity_target = p.dry_humidity_pct
        else:
            humidity_target = p.resting_humidity_pct
        humidity = s.humidity_pct + STEP_S * p.humidity_rate_per_s * (
            humidity_target - s.humidity_pct
        )
        probe = air + self._rng.gauss(0.0, p.probe_noise_c)
        self._state = FridgeState(
            elapsed_s=t,
            temp_c=probe,
            air_c=air,
            humidity_pct=min(100.0, max(0.0, humidity)),
            door_open=door_open,
            compressor_on=compressor_on,
            failed=s.failed,
        )

    def _next_door(self, t: float, door_open: bool) -> bool:
        # Draw every step, door open or not, so the random sequence never depends on
        # what was asked of the model in between.
        opens = self._rng.random() < self.params.door_openings_per_hour / 3600 * STEP_S
        duration = self._rng.uniform(*self.params.door_open_s)
        if self._door_held:
            return True
        if door_open:
            if self._door_closes_at is not None and t >= self._door_closes_at:
                self._door_closes_at = None
                return False
            return True
        if self._random_doors and opens:
            self._door_closes_at = t + duration
            return True
        return False


@dataclass(frozen=True)
class ServedReading:
    """What the probe answered to one request, before rounding to its registers."""

    t: datetime
    temp_c: float
    humidity_pct: float
    door_open: bool


def _int16(value: float, scale: float) -> int:
    raw = max(-32768, min(32767, round(value / scale)))
    return ModbusSerialClient.convert_to_registers(raw, ModbusSerialClient.DATATYPE.INT16)[0]


class FridgeSensorSimulator:
    """The fridge's RS485 line: pymodbus's serial server on one end of a :class:`NullModem`.

    The agent opens :attr:`path`. ``silence()`` stops every device on the line from
    answering (a dead transceiver, a cut A/B pair); ``garble_replies(n)`` corrupts the
    CRC of the next ``n`` answers (noise on the line).
    """

    def __init__(
        self,
        clock: ScaledClock,
        *,
        seed: int = 0,
        params: ThermalParameters | None = None,
        random_doors: bool = True,
        probe_address: int = 1,
        door_module_address: int = 2,
        baudrate: int = 9600,
        history: int = 10_000,
        model: FridgeThermalModel | None = None,
        origin: datetime | None = None,
    ) -> None:
        # A scenario brings its own model (scripted doors and failure) and the instant its
        # elapsed seconds count from; otherwise the fridge starts now with random doors.
        self._model = model or FridgeThermalModel(params, seed=seed, random_doors=random_doors)
        self.line = NullModem()
        self._served: deque[ServedReading] = deque(maxlen=history)
        self._clock = clock
        self._origin = origin if origin is not None else clock.now()
        self._probe_address = probe_address
        self._door_module_address = door_module_address
        self._baudrate = baudrate
        self._lock = threading.Lock()
        self._silent = False
        self._garble = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="fridge-sim", daemon=True)

    @property
    def path(self) -> str:
        return self.line.agent_path

    def start(self) -> FridgeSensorSimulator:
        self._thread.start()
        if not self._ready.wait(5.0) or self._error is not None:
            self.stop()
            raise RuntimeError(f"fridge simulator's Modbus server did not start: {self._error}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        self.line.close()

    def __enter__(self) -> FridgeSensorSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Switches a test or a scenario turns.

    def fail(self) -> None:
        with self._lock:
            self._advance()
            self._model.fail()

    def repair(self) -> None:
        with self._lock:
            self._advance()
            self._model.repair()

    def open_door(self) -> None:
        with self._lock:
            self._advance()
            self._model.open_door()

    def close_door(self) -> None:
        with self._lock:
            self._advance()
            self._model.close_door()

    def silence(self) -> None:
        with self._lock:
            self._silent = True

    def answer(self) -> None:
        with self._lock:
            self._silent = False

    def garble_replies(self, count: int) -> None:
        with self._lock:
            self._garble += count

    def state(self) -> FridgeState:
        with self._lock:
            return self._advance()

    def served_readings(self) -> list[ServedReading]:
        """What the probe answered so far, oldest first (the truth to compare samples with)."""
        with self._lock:
            return list(self._served)

    def _advance(self) -> FridgeState:
        return self._model.advance_to((self._clock.now() - self._origin).total_seconds())

    def _time_of(self, state: FridgeState) -> datetime:
        return self._origin + timedelta(seconds=state.elapsed_s)

    # The Modbus side.

    def _devices(self) -> list[SimDevice]:
        def bits(count: int) -> list[SimData]:
            return [SimData(0, count=count, values=False, datatype=DataType.BITS)]

        probe = SimDevice(
            self._probe_address,
            simdata=(
                bits(16),
                bits(16),
                # Configuration registers as on the real probe: address, baud rate code.
                [SimData(0x0101, values=[self._probe_address, 0], datatype=DataType.REGISTERS)],
                [
                    SimData(PROBE_TEMPERATURE_REGISTER, values=0, datatype=DataType.INT16),
                    SimData(PROBE_HUMIDITY_REGISTER, values=0, datatype=DataType.UINT16),
                ],
            ),
            action=self._probe_action,
        )
        door_module = SimDevice(
            self._door_module_address,
            simdata=(
                bits(16),
                bits(16),
                [SimData(0, values=0, datatype=DataType.REGISTERS)],
                [SimData(0, values=0, datatype=DataType.REGISTERS)],
            ),
            action=self._door_action,
        )
        return [probe, door_module]

    async def _probe_action(
        self,
        function_code: int,
        start_address: int,
        _address: int,
        _count: int,
        registers: list[int],
        _set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if function_code != FC_READ_INPUT_REGISTERS:
            return None
        with self._lock:
            state = self._advance()
            self._served.append(
                ServedReading(
                    self._time_of(state), state.temp_c, state.humidity_pct, state.door_open
                )
            )
        registers[PROBE_TEMPERATURE_REGISTER - start_address] = _int16(state.temp_c, 0.1)
        registers[PROBE_HUMIDITY_REGISTER - start_address] = round(state.humidity_pct * 10)
        return None

    async def _door_action(
        self,
        function_code: int,
        start_address: int,
        _address: int,
        _count: int,
        registers: list[int],
        _set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if function_code != FC_READ_DISCRETE_INPUTS:
            return None
        with self._lock:
            state = self._advance()
        # The reed contact is closed while the door is shut; 16 inputs per register word.
        word = DOOR_CONTACT_INPUT // 16 - start_address
        bit = 1 << (DOOR_CONTACT_INPUT % 16)
        contact_closed = not state.door_open
        registers[word] = (registers[word] | bit) if contact_closed else (registers[word] & ~bit)
        return None

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            return data
        with self._lock:
            if self._silent:
                return b""
            if self._garble > 0:
                self._garble -= 1
                return data[:-1] + bytes([data[-1] ^ 0xFF])
        return data

    def _serve(self) -> None:
        try:
            asyncio.run(self._serve_async())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _serve_async(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = ModbusSerialServer(
            self._devices(),
            port=self.line.device_path,
            baudrate=self._baudrate,
            trace_packet=self._trace_packet,
        )
        await server.serve_forever(background=True)
        self._ready.set()
        await self._stopping.wait()
        await server.shutdown()  # type: ignore[no-untyped-call]  # untyped in pymodbus
