"""Polls the medical fridge's Modbus RTU sensors (pymodbus over pyserial) into samples.

Decoding and the silence rule are pure (:func:`decode_registers`, :func:`decode_contact`,
:func:`plan_reads`, :class:`SilenceWatch`); :class:`FridgeReader` is the thread around
them that owns the serial port.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from pydantic import ValidationError
from pymodbus import FramerType
from pymodbus.client import ModbusSerialClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ModbusPDU

from edge_agent.counters import DeviceCounters
from edge_agent.supervisor import Supervisor
from firmware_config.fridge import FridgePortConfig, FridgeSensorConfig
from firmware_config.sensor_profiles import (
    DataType,
    RegisterFunction,
    RegisterMapping,
    SensorProfile,
)
from protocol.clock import Clock, SystemClock
from protocol.models import FridgeSample

log = logging.getLogger(__name__)

EVENT_SENSOR_SILENT: Final = "fridge_sensor_silent"
EVENT_SENSOR_ANSWERING: Final = "fridge_sensor_answering"

# One request may cover several quantities when they sit close together; the gap
# read for nothing stays small.
MAX_REGISTERS_PER_READ: Final = 16
MAX_BITS_PER_READ: Final = 64

_PYMODBUS_TYPES: Final = {
    DataType.INT16: ModbusSerialClient.DATATYPE.INT16,
    DataType.UINT16: ModbusSerialClient.DATATYPE.UINT16,
    DataType.INT32: ModbusSerialClient.DATATYPE.INT32,
    DataType.FLOAT32: ModbusSerialClient.DATATYPE.FLOAT32,
}


def decode_registers(mapping: RegisterMapping, registers: Sequence[int]) -> float:
    """The quantity's value from its raw registers: signedness, word order, scale, offset."""
    if mapping.data_type is DataType.BOOL:
        raise ValueError("a contact is decoded with decode_contact")
    if len(registers) != mapping.word_count:
        raise ValueError(
            f"{mapping.data_type.value} takes {mapping.word_count} register(s), "
            f"got {len(registers)}"
        )
    if any(not 0 <= word <= 0xFFFF for word in registers):
        raise ValueError(f"registers are 16-bit words, got {list(registers)}")
    raw = ModbusSerialClient.convert_from_registers(
        list(registers), _PYMODBUS_TYPES[mapping.data_type], word_order=mapping.word_order
    )
    if not isinstance(raw, int | float):
        raise ValueError(f"registers {list(registers)} did not decode to a number")
    # Rounded so that 53 × 0.1 travels as 5.3, not 5.300000000000001.
    return round(raw * mapping.scale + mapping.offset, 6)


def decode_contact(mapping: RegisterMapping, active: bool) -> bool:
    if mapping.data_type is not DataType.BOOL:
        raise ValueError("a register value is decoded with decode_registers")
    return active != mapping.invert


@dataclass(frozen=True)
class ReadBlock:
    """One request: a run of one table that covers one or more quantities."""

    function: RegisterFunction
    address: int
    count: int
    quantities: tuple[tuple[str, RegisterMapping], ...]

    def value_of(self, mapping: RegisterMapping, data: Sequence[int] | Sequence[bool]) -> object:
        start = mapping.address - self.address
        if mapping.data_type is DataType.BOOL:
            return decode_contact(mapping, bool(data[start]))
        return decode_registers(mapping, [int(w) for w in data[start : start + mapping.word_count]])


def plan_reads(profile: SensorProfile) -> list[ReadBlock]:
    """Group a profile's quantities into as few requests as the limits allow."""
    by_function: dict[RegisterFunction, list[tuple[str, RegisterMapping]]] = {}
    for quantity, mapping in profile.quantities.items():
        by_function.setdefault(mapping.function, []).append((quantity, mapping))
    blocks: list[ReadBlock] = []
    for function, items in by_function.items():
        limit = MAX_BITS_PER_READ if function.is_bit else MAX_REGISTERS_PER_READ
        items.sort(key=lambda item: item[1].address)
        group: list[tuple[str, RegisterMapping]] = []
        for item in items:
            start = group[0][1].address if group else item[1].address
            end = item[1].address + item[1].word_count
            if group and end - start > limit:
                blocks.append(_block(function, group))
                group = []
            group.append(item)
        blocks.append(_block(function, group))
    return blocks


def _block(function: RegisterFunction, group: list[tuple[str, RegisterMapping]]) -> ReadBlock:
    start = min(m.address for _, m in group)
    end = max(m.address + m.word_count for _, m in group)
    return ReadBlock(function, start, end - start, tuple(group))


class SilenceWatch:
    """Says once when a device has not answered for ``silent_after_s``, and once when it
    answers again. Times are seconds on any monotonic scale."""

    def __init__(self, silent_after_s: float, now: float) -> None:
        self._silent_after_s = silent_after_s
        self._last_answer = now
        self.silent = False

    def answered(self, now: float) -> bool:
        """Record an answer; True if the device had been reported silent."""
        self._last_answer = now
        was_silent, self.silent = self.silent, False
        return was_silent

    def quiet_for(self, now: float) -> float:
        return now - self._last_answer

    def check(self, now: float) -> bool:
        """True the first time the silence passes the limit."""
        if not self.silent and self.quiet_for(now) > self._silent_after_s:
            self.silent = True
            return True
        return False


class _CrcWatch:
    """pymodbus drops an answer whose CRC is wrong and waits out the timeout, so to the
    caller a garbled answer looks like none. The client's packet trace hook sees the
    bytes; they are checked here with pymodbus's own RTU framer to tell the two apart."""

    def __init__(self) -> None:
        self._framer = FramerRTU(DecodePDU(False))
        self.seen = False

    def trace(self, sending: bool, data: bytes) -> bytes:
        if not sending and data:
            used, _device, _tid, payload = self._framer.decode(data)
            if used and not payload:
                self.seen = True
        return data


@dataclass
class _Sensor:
    config: FridgeSensorConfig
    reads: list[ReadBlock]
    watch: SilenceWatch


@dataclass(frozen=True)
class _Reply:
    answered: bool
    data: Sequence[int] | Sequence[bool] | None = None


_NO_ANSWER: Final = _Reply(answered=False)


class FridgeReader:
    """A thread that polls every sensor of ``config`` each ``poll_interval_s`` and hands out
    one :class:`FridgeSample` per poll with whatever answered.

    Timeouts and CRC errors are counted and retried with back-off; a sensor silent for
    ``silent_after_s`` is reported through ``on_event`` (and again when it answers); a
    port that disappears is reopened with back-off. :meth:`run` is the polling loop, for
    a :class:`~edge_agent.supervisor.Supervisor`, which restarts it whatever ends it;
    :meth:`start` runs it under one of its own.
    """

    def __init__(
        self,
        config: FridgePortConfig,
        on_sample: Callable[[FridgeSample], None],
        on_event: Callable[[str, str], None] | None = None,
        counters: DeviceCounters | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._config = config
        self._on_sample = on_sample
        self._on_event = on_event or (lambda kind, detail: None)
        self.counters = counters or DeviceCounters()
        self._clock: Clock = clock or SystemClock()
        now = time.monotonic()
        self._sensors = [
            _Sensor(s, plan_reads(s.sensor_profile), SilenceWatch(config.silent_after_s, now))
            for s in config.sensors
        ]
        self._crc = _CrcWatch()
        self._stop = threading.Event()
        self._supervisor: Supervisor | None = None

    def start(self) -> None:
        self._supervisor = Supervisor(
            first_pause_s=self._config.reopen_backoff_s,
            max_pause_s=self._config.reopen_backoff_max_s,
        )
        self._supervisor.add("fridge", self.run, self.counters)
        self._supervisor.start()

    def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.stop(timeout_s=5.0)

    def run(self, stop: threading.Event) -> None:
        self._stop = stop
        backoff = self._config.reopen_backoff_s
        while not self._stop.is_set():
            client = self._open()
            if client is None:
                self.counters.add("port_errors")
                log.warning(
                    "fridge port %s cannot be opened; retrying in %.1f s",
                    self._config.port,
                    backoff,
                )
                self._check_silence()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._config.reopen_backoff_max_s)
                continue
            backoff = self._config.reopen_backoff_s
            try:
                self._poll_until_port_lost(client)
            finally:
                client.close()  # type: ignore[no-untyped-call]  # untyped in pymodbus

    def _open(self) -> ModbusSerialClient | None:
        config = self._config
        client = ModbusSerialClient(
            config.port,
            framer=FramerType.RTU,
            baudrate=config.baudrate,
            bytesize=config.bytesize,
            parity=config.parity,
            stopbits=config.stopbits,
            timeout=config.response_timeout_s,
            # Retries are ours, so each failed attempt is counted and backed off.
            retries=0,
            trace_packet=self._crc.trace,
        )
        if not client.connect():
            return None
        log.info("fridge port %s open", config.port)
        return client

    def _poll_until_port_lost(self, client: ModbusSerialClient) -> None:
        interval = self._config.poll_interval_s
        next_poll = time.monotonic()
        while not self._stop.is_set():
            try:
                self._poll_once(client)
            except ConnectionException as exc:
                self.counters.add("port_errors")
                log.warning("fridge port %s lost (%s); reopening", self._config.port, exc)
                return
            self._check_silence()
            next_poll += interval
            now = time.monotonic()
            # A slow cycle (a silent sensor's timeouts) shifts the schedule; no burst after.
            next_poll = max(next_poll, now)
            self._stop.wait(next_poll - now)

    def _poll_once(self, client: ModbusSerialClient) -> None:
        t = self._clock.now()
        values: dict[str, object] = {}
        for sensor in self._sensors:
            for block in sensor.reads:
                reply = self._read(client, sensor, block)
                if not reply.answered:
                    break  # the rest of this device's reads would time out too
                if sensor.watch.answered(time.monotonic()):
                    self._event(EVENT_SENSOR_ANSWERING, f"{sensor.config.label} answers again")
                if reply.data is None:
                    continue
                for quantity, mapping in block.quantities:
                    try:
                        values[quantity] = block.value_of(mapping, reply.data)
                    except (ValueError, IndexError, ModbusException) as exc:
                        self.counters.add("decode_errors")
                        log.warning("%s %s: %s", sensor.config.label, quantity, exc)
        if values and not self._stop.is_set():
            sample = self._sample(t, values)
            if sample is not None:
                self.counters.add("samples")
                try:
                    self._on_sample(sample)
                except Exception:
                    self.counters.add("callback_errors")
                    log.exception("fridge sample handler failed")

    def _read(self, client: ModbusSerialClient, sensor: _Sensor, block: ReadBlock) -> _Reply:
        delay = self._config.retry_backoff_s
        for attempt in range(self._config.retries + 1):
            if attempt:
                self.counters.add("retries")
                if self._stop.wait(delay):
                    return _NO_ANSWER
                delay *= 2
            self._crc.seen = False
            try:
                response = self._request(client, sensor.config.slave_address, block)
            except ConnectionException:
                raise
            except ModbusIOException:
                self.counters.add("crc_errors" if self._crc.seen else "timeouts")
                continue
            except ModbusException as exc:
                self.counters.add("read_errors")
                log.warning("%s: %s", sensor.config.label, exc)
                continue
            except (ValueError, IndexError, KeyError, TypeError, struct.error) as exc:
                # An answer with a right CRC that pymodbus cannot take apart (a wrong
                # length or function): a bad frame from the device, not a reader fault.
                self.counters.add("malformed_responses")
                log.warning("%s: malformed answer (%s)", sensor.config.label, exc)
                continue
            if response.isError():
                # The device is there but refuses (wrong address in the profile, say):
                # retrying will not help.
                self.counters.add("exception_responses")
                log.warning(
                    "%s refused %s %d+%d: %s",
                    sensor.config.label,
                    block.function.value,
                    block.address,
                    block.count,
                    response,
                )
                return _Reply(answered=True)
            data = response.bits if block.function.is_bit else response.registers
            if len(data) < block.count:
                self.counters.add("short_responses")
                return _Reply(answered=True)
            return _Reply(answered=True, data=data)
        return _NO_ANSWER

    @staticmethod
    def _request(client: ModbusSerialClient, device_id: int, block: ReadBlock) -> ModbusPDU:
        read = {
            RegisterFunction.HOLDING_REGISTER: client.read_holding_registers,
            RegisterFunction.INPUT_REGISTER: client.read_input_registers,
            RegisterFunction.COIL: client.read_coils,
            RegisterFunction.DISCRETE_INPUT: client.read_discrete_inputs,
        }[block.function]
        return read(block.address, count=block.count, device_id=device_id)

    def _sample(self, t: datetime, values: dict[str, object]) -> FridgeSample | None:
        fields = dict(values)
        for _ in range(len(values) + 1):
            try:
                return FridgeSample.model_validate({"t": t, **fields})
            except ValidationError as exc:
                # A value out of any plausible range (a probe's error code) is dropped, not
                # the whole sample.
                for error in exc.errors(include_url=False):
                    name = str(error["loc"][0]) if error["loc"] else ""
                    if name in fields:
                        self.counters.add("out_of_range")
                        log.warning("fridge %s = %r rejected: %s", name, fields[name], error["msg"])
                        del fields[name]
                if not fields:
                    return None
        return None

    def _check_silence(self) -> None:
        now = time.monotonic()
        for sensor in self._sensors:
            if sensor.watch.check(now):
                self.counters.add("silent_reports")
                self._event(
                    EVENT_SENSOR_SILENT,
                    f"{sensor.config.label} silent for {sensor.watch.quiet_for(now):.1f} s "
                    f"on {self._config.port}",
                )

    def _event(self, kind: str, detail: str) -> None:
        log.warning("fridge: %s: %s", kind, detail)
        try:
            self._on_event(kind, detail)
        except Exception:
            self.counters.add("callback_errors")
            log.exception("fridge event handler failed")
