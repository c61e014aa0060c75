"""Victron devices on virtual serial ports, watching one simulated auxiliary battery.

:class:`AuxiliaryPowerSystem` is the physics: a 12.8 V LiFePO4 battery feeding the
surgery's equipment, charged by a roof solar array through an MPPT and by the alternator
(through a DC-DC charger) while the bus drives. :class:`Bmv712Simulator` and
:class:`SmartSolarMpptSimulator` each write what their real counterpart would, once per
second of simulated time, in VE.Direct TEXT blocks, now and then interleaving a HEX frame
as real devices do.
"""

from __future__ import annotations

import random
import threading
from abc import ABC, abstractmethod
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from protocol.clock import ScaledClock
from simulators.serial_port import VirtualSerialPort

Record = tuple[str, str]

# Resting voltage of a 4-cell LiFePO4 battery against state of charge: flat in the middle,
# steep at both ends.
LIFEPO4_OCV: Final[Sequence[tuple[float, float]]] = (
    (0.00, 10.00),
    (0.05, 12.00),
    (0.10, 12.80),
    (0.20, 12.95),
    (0.30, 13.05),
    (0.40, 13.10),
    (0.50, 13.15),
    (0.60, 13.20),
    (0.70, 13.25),
    (0.80, 13.30),
    (0.90, 13.35),
    (0.99, 13.45),
    (1.00, 13.60),
)
STEP_S: Final = 1.0
MPPT_EFFICIENCY: Final = 0.97
ABSORPTION_SOC: Final = 0.95
DISCHARGE_FLOOR_SOC: Final = 0.10  # the BMV's time-to-go counts down to this
LOW_SOC_ALARM: Final = 0.20
LOW_VOLTAGE_ALARM_V: Final = 12.0
STARTER_PARKED_V: Final = 12.6
STARTER_CHARGING_V: Final = 14.2


def open_circuit_voltage(soc: float) -> float:
    """Linear interpolation in :data:`LIFEPO4_OCV`; ``soc`` in 0..1."""
    soc = min(1.0, max(0.0, soc))
    socs = [s for s, _ in LIFEPO4_OCV]
    i = min(bisect_right(socs, soc), len(LIFEPO4_OCV) - 1)
    (s0, v0), (s1, v1) = LIFEPO4_OCV[i - 1], LIFEPO4_OCV[i]
    return v0 + (v1 - v0) * (soc - s0) / (s1 - s0)


def block_records(records: Sequence[Record]) -> list[bytes]:
    """A TEXT block as its encoded records, the last one the checksum record whose byte
    brings the sum of the whole block to 0 mod 256."""
    encoded = [b"\r\n%s\t%s" % (label.encode(), value.encode()) for label, value in records]
    tail = b"\r\nChecksum\t"
    total = sum(sum(record) for record in encoded) + sum(tail)
    return [*encoded, tail + bytes([-total % 256])]


def checksummed_block(records: Sequence[Record]) -> bytes:
    """A TEXT block, checksum included."""
    return b"".join(block_records(records))


def hex_async_frame(register: int, value: bytes, flags: int = 0) -> bytes:
    """A HEX-protocol asynchronous register update (command ``A``): ``:A<id><flags><value><cs>\\n``.

    Multi-byte fields are little-endian; the bytes, command nibble included, sum to 0x55.
    """
    payload = bytes([register & 0xFF, register >> 8, flags]) + value
    check = (0x55 - 0x0A - sum(payload)) % 256
    return b":A" + (payload + bytes([check])).hex().upper().encode() + b"\n"


@dataclass(frozen=True)
class PowerConditions:
    """What drives the battery during one step: engine, sun and what the surgery draws."""

    driving: bool
    solar_power_w: float
    equipment_load_w: float


PowerSchedule = Callable[[datetime], PowerConditions]


@dataclass(frozen=True)
class PowerState:
    """What the battery and its chargers are doing at ``t`` (currents positive into the battery)."""

    t: datetime
    soc: float
    battery_voltage_v: float
    battery_current_a: float
    load_current_a: float
    solar_current_a: float
    alternator_current_a: float
    pv_voltage_v: float
    pv_power_w: float
    driving: bool
    consumed_ah: float
    charge_state: int  # VE.Direct CS code
    yield_total_kwh: float
    yield_today_kwh: float
    max_power_today_w: float
    yield_yesterday_kwh: float
    max_power_yesterday_w: float
    day_sequence: int
    min_voltage_v: float
    max_voltage_v: float
    drawn_ah: float
    discharged_kwh: float
    charged_kwh: float


class AuxiliaryPowerSystem:
    """The bus's auxiliary battery, its load and its chargers, integrated in 1 s steps.

    Time only moves when a device asks for the state at a later time
    (:meth:`advance_to`), so the result depends on simulated time, not on thread timing.
    With a ``schedule`` (a scenario's day) the conditions of each step come from it, at
    the step's own time, instead of from the setters.
    The solar charger's day ends at midnight UTC (a real one detects nightfall).
    """

    def __init__(
        self,
        start: datetime,
        *,
        capacity_ah: float = 200.0,
        soc: float = 0.8,
        equipment_load_w: float = 250.0,
        solar_power_w: float = 0.0,
        alternator_current_a: float = 30.0,
        internal_resistance_ohm: float = 0.01,
        pv_voltage_v: float = 36.0,
        driving: bool = False,
        schedule: PowerSchedule | None = None,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if capacity_ah <= 0:
            raise ValueError(f"capacity_ah must be positive, got {capacity_ah}")
        if not 0.0 <= soc <= 1.0:
            raise ValueError(f"soc is a fraction in 0..1, got {soc}")
        if alternator_current_a < 0 or internal_resistance_ohm < 0 or pv_voltage_v <= 0:
            raise ValueError("alternator current, resistance and PV voltage must be positive")
        self.capacity_ah = capacity_ah
        self._resistance = internal_resistance_ohm
        self._alternator_a = alternator_current_a
        self._array_voltage = pv_voltage_v
        self._lock = threading.Lock()
        self._equipment_load_w = 0.0
        self._solar_power_w = 0.0
        self.set_equipment_load(equipment_load_w)
        self.set_solar_power(solar_power_w)
        self._driving = driving
        self._schedule = schedule
        if schedule is not None:
            self._apply(schedule(start))
        v = open_circuit_voltage(soc)
        self._state = PowerState(
            t=start,
            soc=soc,
            battery_voltage_v=v,
            battery_current_a=0.0,
            load_current_a=0.0,
            solar_current_a=0.0,
            alternator_current_a=0.0,
            pv_voltage_v=0.0,
            pv_power_w=0.0,
            driving=driving,
            consumed_ah=(1.0 - soc) * capacity_ah,
            charge_state=0,
            yield_total_kwh=0.0,
            yield_today_kwh=0.0,
            max_power_today_w=0.0,
            yield_yesterday_kwh=0.0,
            max_power_yesterday_w=0.0,
            day_sequence=0,
            min_voltage_v=v,
            max_voltage_v=v,
            drawn_ah=0.0,
            discharged_kwh=0.0,
            charged_kwh=0.0,
        )
        self._state = self._step(self._state, 0.0)

    def set_driving(self, driving: bool) -> None:
        """Engine running: the alternator charges through the DC-DC charger."""
        with self._lock:
            self._driving = driving

    def set_solar_power(self, watts: float) -> None:
        """What the roof array could deliver now (sun, shade, night)."""
        if watts < 0:
            raise ValueError(f"solar power cannot be negative, got {watts}")
        with self._lock:
            self._solar_power_w = watts

    def set_equipment_load(self, watts: float) -> None:
        """What the surgery draws from the battery (fridge, lights, computers)."""
        if watts < 0:
            raise ValueError(f"equipment load cannot be negative, got {watts}")
        with self._lock:
            self._equipment_load_w = watts

    @property
    def state(self) -> PowerState:
        with self._lock:
            return self._state

    def advance_to(self, t: datetime) -> PowerState:
        """Integrate up to ``t`` (in whole steps) and return the state there."""
        with self._lock:
            while self._state.t + timedelta(seconds=STEP_S) <= t:
                if self._schedule is not None:
                    self._apply(self._schedule(self._state.t))
                self._state = self._step(self._state, STEP_S)
            return self._state

    def _apply(self, conditions: PowerConditions) -> None:
        if conditions.solar_power_w < 0 or conditions.equipment_load_w < 0:
            raise ValueError(f"power conditions cannot be negative: {conditions}")
        self._driving = conditions.driving
        self._solar_power_w = conditions.solar_power_w
        self._equipment_load_w = conditions.equipment_load_w

    def _step(self, s: PowerState, dt: float) -> PowerState:
        t = s.t + timedelta(seconds=dt)
        v_rest = open_circuit_voltage(s.soc)
        load_a = self._equipment_load_w / v_rest
        solar_a = self._solar_power_w * MPPT_EFFICIENCY / v_rest
        alternator_a = self._alternator_a if self._driving else 0.0
        if s.soc >= 1.0:
            # Full: the chargers float and only carry the load; the solar charger first.
            solar_a = min(solar_a, load_a)
            alternator_a = min(alternator_a, load_a - solar_a)
        net_a = solar_a + alternator_a - load_a
        soc = min(1.0, max(0.0, s.soc + net_a * dt / 3600.0 / self.capacity_ah))
        voltage = open_circuit_voltage(soc) + net_a * self._resistance
        pv_power = solar_a * v_rest / MPPT_EFFICIENCY
        if pv_power < 0.5:
            charge_state = 0
        elif soc >= 1.0:
            charge_state = 5
        elif soc >= ABSORPTION_SOC:
            charge_state = 4
        else:
            charge_state = 3
        energy_kwh = pv_power * dt / 3.6e6
        same_day = t.date() == s.t.date()
        today = s.yield_today_kwh + energy_kwh if same_day else energy_kwh
        drawn = -net_a * dt / 3600.0 if net_a < 0 else 0.0
        return PowerState(
            t=t,
            soc=soc,
            battery_voltage_v=voltage,
            battery_current_a=net_a,
            load_current_a=load_a,
            solar_current_a=solar_a,
            alternator_current_a=alternator_a,
            pv_voltage_v=self._array_voltage if self._solar_power_w > 0 else 0.01,
            pv_power_w=pv_power,
            driving=self._driving,
            consumed_ah=(1.0 - soc) * self.capacity_ah,
            charge_state=charge_state,
            yield_total_kwh=s.yield_total_kwh + energy_kwh,
            yield_today_kwh=today,
            max_power_today_w=max(s.max_power_today_w if same_day else 0.0, pv_power),
            yield_yesterday_kwh=s.yield_yesterday_kwh if same_day else s.yield_today_kwh,
            max_power_yesterday_w=s.max_power_yesterday_w if same_day else s.max_power_today_w,
            day_sequence=s.day_sequence if same_day else (s.day_sequence + 1) % 365,
            min_voltage_v=min(s.min_voltage_v, voltage),
            max_voltage_v=max(s.max_voltage_v, voltage),
            drawn_ah=s.drawn_ah + drawn,
            discharged_kwh=s.discharged_kwh + (drawn * voltage / 1000.0),
            charged_kwh=s.charged_kwh + (max(net_a, 0.0) * dt / 3600.0 * voltage / 1000.0),
        )


@dataclass(frozen=True)
class WrittenBlock:
    """One main block a device wrote, with the state it described: the test's truth."""

    t: datetime
    state: PowerState
    records: tuple[Record, ...]

    def value(self, label: str) -> str:
        return dict(self.records)[label]


class VeDirectDeviceSimulator(ABC):
    """Writes its blocks once per ``period_s`` of simulated time on its own virtual port.

    Deterministic for a ``seed``: measurement noise and HEX-frame interleaving come from
    one seeded generator, and the battery moves only with simulated time.
    """

    thread_name = "vedirect-sim"

    def __init__(
        self,
        system: AuxiliaryPowerSystem,
        clock: ScaledClock,
        *,
        seed: int = 0,
        period_s: float = 1.0,
        hex_frame_probability: float = 0.1,
        history: int = 7200,
    ) -> None:
        if period_s <= 0:
            raise ValueError(f"period_s must be positive, got {period_s}")
        if not 0.0 <= hex_frame_probability <= 1.0:
            raise ValueError(f"hex_frame_probability must be in 0..1, got {hex_frame_probability}")
        self.system = system
        self._clock = clock
        self._period = timedelta(seconds=period_s)
        self._hex_probability = hex_frame_probability
        self._random = random.Random(seed)
        self.truth: deque[WrittenBlock] = deque(maxlen=history)
        self._truth_lock = threading.Lock()
        self._port: VirtualSerialPort | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)

    @property
    def port(self) -> VirtualSerialPort:
        # Opened on first use: a device asked only for its output (output_at) holds no pty.
        if self._port is None:
            self._port = VirtualSerialPort()
        return self._port

    @property
    def path(self) -> str:
        return self.port.path

    def start(self) -> None:
        _ = self.port
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        if self._port is not None:
            self._port.close()

    def written(self) -> list[WrittenBlock]:
        with self._truth_lock:
            return list(self.truth)

    def output_at(self, t: datetime) -> bytes:
        """What the device sends for time ``t``: its blocks, maybe with a HEX frame inside."""
        state = self.system.advance_to(t)
        blocks = self.blocks(state)
        with self._truth_lock:
            self.truth.append(WrittenBlock(t, state, tuple(blocks[0])))
        pieces = [record for records in blocks for record in block_records(records)]
        if self._random.random() < self._hex_probability:
            # Real devices push HEX frames between records, even in the middle of a block.
            at = self._random.randint(0, len(pieces))
            pieces.insert(at, self.hex_frame(state))
        return b"".join(pieces)

    @abstractmethod
    def blocks(self, state: PowerState) -> list[list[Record]]:
        """The TEXT blocks for one period, the main block (the one with readings) first."""

    @abstractmethod
    def hex_frame(self, state: PowerState) -> bytes:
        """An asynchronous HEX frame the device might push."""

    def _noise(self, sigma: float) -> float:
        return self._random.gauss(0.0, sigma)

    def _run(self) -> None:
        now = self._clock.now()
        t = now.replace(microsecond=0) + self._period
        while not self._stop.is_set():
            self._clock.sleep_until(t)
            if self._stop.is_set():
                break
            self.port.write(self.output_at(t))
            t += self._period


class Bmv712Simulator(VeDirectDeviceSimulator):
    """A BMV-712 Smart battery monitor; its aux input watches the starter battery.

    Like the real one it sends two blocks: the present readings, then the history
    (H1..H18) with its own checksum.
    """

    thread_name = "bmv-sim"
    product_id = "0xA381"

    def blocks(self, state: PowerState) -> list[list[Record]]:
        voltage = state.battery_voltage_v + self._noise(0.002)
        current = state.battery_current_a + self._noise(0.02)
        starter = STARTER_CHARGING_V if state.driving else STARTER_PARKED_V
        reason = 0
        if voltage < LOW_VOLTAGE_ALARM_V:
            reason |= 1
        if state.soc < LOW_SOC_ALARM:
            reason |= 4
        if current < -0.05:
            remaining_ah = max(0.0, state.soc - DISCHARGE_FLOOR_SOC) * self.system.capacity_ah
            ttg = str(min(14400, round(remaining_ah / -current * 60)))
        else:
            ttg = "-1"
        alarm = "ON" if reason else "OFF"
        main: list[Record] = [
            ("PID", self.product_id),
            ("V", str(round(voltage * 1000))),
            ("VS", str(round((starter + self._noise(0.002)) * 1000))),
            ("I", str(round(current * 1000))),
            ("P", str(round(voltage * current))),
            ("CE", str(-round(state.consumed_ah * 1000))),
            ("SOC", str(round(state.soc * 1000))),
            ("TTG", ttg),
            ("Alarm", alarm),
            ("Relay", alarm),
            ("AR", str(reason)),
            ("BMV", "712 Smart"),
            ("FW", "0413"),
        ]
        history: list[Record] = [
            ("H1", str(-round(state.consumed_ah * 1000))),
            ("H2", str(-round(state.consumed_ah * 1000))),
            ("H3", "0"),
            ("H4", "0"),
            ("H5", "0"),
            ("H6", str(-round(state.drawn_ah * 1000))),
            ("H7", str(round(state.min_voltage_v * 1000))),
            ("H8", str(round(state.max_voltage_v * 1000))),
            ("H9", "0" if state.soc >= 1.0 else "3600"),
            ("H10", "0"),
            ("H11", "0"),
            ("H12", "0"),
            ("H15", str(round(STARTER_PARKED_V * 1000))),
            ("H16", str(round(STARTER_CHARGING_V * 1000))),
            ("H17", str(round(state.discharged_kwh * 100))),
            ("H18", str(round(state.charged_kwh * 100))),
        ]
        return [main, history]

    def hex_frame(self, state: PowerState) -> bytes:
        # 0x0FFF: state of charge, un16 in 0.01 %.
        return hex_async_frame(0x0FFF, round(state.soc * 10000).to_bytes(2, "little"))


class SmartSolarMpptSimulator(VeDirectDeviceSimulator):
    """A SmartSolar MPPT 75/15 on the roof array (load output on, feeding nothing)."""

    thread_name = "mppt-sim"
    product_id = "0xA053"

    serial_number = "HQ2231ABCDE"

    def blocks(self, state: PowerState) -> list[list[Record]]:
        producing = state.charge_state != 0
        tracker = "0" if not producing else ("2" if state.charge_state == 3 else "1")
        return [
            [
                ("PID", self.product_id),
                ("FW", "161"),
                ("SER#", self.serial_number),
                ("V", str(round((state.battery_voltage_v + self._noise(0.005)) * 1000))),
                ("I", str(round(state.solar_current_a * 1000))),
                ("VPV", str(round(state.pv_voltage_v * 1000))),
                ("PPV", str(round(state.pv_power_w))),
                ("CS", str(state.charge_state)),
                ("MPPT", tracker),
                ("OR", "0x00000000" if producing else "0x00000001"),
                ("ERR", "0"),
                ("LOAD", "ON"),
                ("IL", "0"),
                ("H19", str(round(state.yield_total_kwh * 100))),
                ("H20", str(round(state.yield_today_kwh * 100))),
                ("H21", str(round(state.max_power_today_w))),
                ("H22", str(round(state.yield_yesterday_kwh * 100))),
                ("H23", str(round(state.max_power_yesterday_w))),
                ("HSDS", str(state.day_sequence)),
            ]
        ]

    def hex_frame(self, state: PowerState) -> bytes:
        # 0x0201: device state, un8 (the same code as CS).
        return hex_async_frame(0x0201, bytes([state.charge_state]))
