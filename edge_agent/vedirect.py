"""Victron VE.Direct TEXT protocol: block framing, checksum, typed readings, energy samples.

Pure: bytes in, checked blocks out, then :class:`BatteryMonitorReading` (BMV-7xx, SmartShunt)
or :class:`SolarChargerReading` (SmartSolar/BlueSolar MPPT), then :class:`EnergySample`.
No serial port, no clock: the caller says when a block arrived.

A device sends one block per second at 19200 baud, 8N1::

    \\r\\n<label>\\t<value> ... \\r\\nChecksum\\t<byte>

and the block is intact when all its bytes, from the leading ``\\r\\n`` through the
checksum byte, sum to 0 mod 256. The checksum byte may be any value, ``:`` and ``\\n``
included. Between and inside blocks, a device may send HEX-protocol frames
(``:<hex digits>\\n``, e.g. asynchronous register updates); they are not part of the
text checksum and must not disturb the block they interrupt.

Hand-written because the Python VE.Direct packages (vedirect, vedirect-m8) own the serial
port, drop bad blocks silently and reset the block in progress when a HEX frame arrives;
here every discarded byte run and block is counted, and the state machine has no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, auto
from typing import ClassVar, Final, Literal

from pydantic import ValidationError

from edge_agent.counters import DeviceCounters
from protocol.models import EnergySample

DeviceKind = Literal["bmv", "mppt"]

CHECKSUM_LABEL: Final = "Checksum"
# The protocol's longest label is 8 characters and its longest value 32; devices with
# newer firmware add labels, so leave some room before calling a line absurd.
MAX_LABEL_BYTES: Final = 16
MAX_VALUE_BYTES: Final = 33
# The protocol caps a block at 22 records (the BMV splits its output in two blocks).
MAX_RECORDS_PER_BLOCK: Final = 32
# ':' + command nibble + register (4) + flags (2) + up to 34 data bytes (68) + checksum (2).
MAX_HEX_FRAME_BYTES: Final = 96

_CR: Final = 0x0D
_LF: Final = 0x0A
_TAB: Final = 0x09
_COLON: Final = 0x3A
_HEX_DIGITS: Final = frozenset(b"0123456789ABCDEFabcdef")
# The first label of every block Victron devices send: PID for the readings, H1 for the
# BMV's history. A block read after a loss of sync must start with one of them, or it
# may be the tail of a block whose head was lost (and its sum is 0 once in 256 times).
BLOCK_OPENERS: Final = frozenset({"PID", "H1"})
# The value a device sends when it does not know (e.g. SOC before the first sync).
_UNKNOWN: Final = "---"

# Counter names, one place so the health report and the tests agree.
BLOCKS: Final = "vedirect_blocks"
BAD_CHECKSUM: Final = "vedirect_bad_checksum"
TRUNCATED: Final = "vedirect_truncated"
OVERSIZE: Final = "vedirect_oversize"
MALFORMED: Final = "vedirect_malformed"
GARBAGE_BYTES: Final = "vedirect_garbage_bytes"
HEX_FRAMES: Final = "vedirect_hex_frames"
HEX_MALFORMED: Final = "vedirect_hex_malformed"
BAD_VALUES: Final = "vedirect_bad_values"
HISTORY_BLOCKS: Final = "vedirect_history_blocks"
UNKNOWN_BLOCKS: Final = "vedirect_unknown_blocks"
REJECTED_SAMPLES: Final = "vedirect_rejected_samples"


@dataclass(frozen=True)
class VeDirectBlock:
    """One block whose checksum verified: its records in the order the device sent them."""

    fields: Mapping[str, str]


class _State(Enum):
    IDLE = auto()  # outside any block: waiting for the '\r' that opens a record
    RECORD_START = auto()  # got '\r', expecting '\n'
    LABEL = auto()
    VALUE = auto()
    CHECKSUM = auto()  # the next byte, whatever it is, is the checksum byte
    HEX = auto()  # inside a HEX frame, until '\n'


@dataclass
class _Block:
    fields: dict[str, str] = field(default_factory=dict)
    byte_sum: int = 0  # bytes of its completed records


class VeDirectFramer:
    """Splits a VE.Direct byte stream into blocks whose checksum verified.

    ``feed`` takes any chunk of bytes and returns the blocks it completed; it never
    raises and its memory is bounded whatever it is fed. A block that cannot be trusted
    is dropped and counted:

    - ``vedirect_bad_checksum``: the bytes do not sum to 0;
    - ``vedirect_truncated``: the block was cut (a label came back before the checksum,
      the device restarted), or it may be the tail of one: read after the reader joined,
      after garbage or after a dropped block, and not opened by ``PID`` or ``H1``;
    - ``vedirect_oversize``: a label, value, block or HEX frame over the protocol's size;
    - ``vedirect_malformed``: a record that does not follow ``\\r\\n<label>\\t<value>``.

    After a fault the framer resynchronises on the next ``\\r``. Bytes outside any block
    are counted in ``vedirect_garbage_bytes``; HEX frames in ``vedirect_hex_frames``
    (skipped, not decoded), and a ``:`` not followed by a HEX frame in
    ``vedirect_hex_malformed``.
    """

    def __init__(self, counters: DeviceCounters) -> None:
        self._counters = counters
        self._state = _State.IDLE
        self._resume = _State.IDLE
        self._hex_length = 0
        self._block: _Block | None = None
        self._record_sum = 0
        self._label = bytearray()
        self._value = bytearray()
        # True when the last thing read was a whole block (HEX frames aside), so the
        # block in progress began where the device began it. False at the start, after
        # garbage and after a dropped block: the block in progress may be a tail.
        self._synchronised = False

    def feed(self, data: bytes) -> list[VeDirectBlock]:
        blocks: list[VeDirectBlock] = []
        for byte in data:
            block = self._step(byte)
            if block is not None:
                blocks.append(block)
        return blocks

    def _step(self, byte: int) -> VeDirectBlock | None:
        state = self._state
        if state is _State.HEX:
            self._hex_byte(byte)
        elif byte == _COLON and state is not _State.CHECKSUM:
            self._resume = state
            self._hex_length = 1
            self._state = _State.HEX
        elif state is _State.CHECKSUM:
            return self._checksum_byte(byte)
        elif byte == _CR:
            self._carriage_return(state)
        elif state is _State.IDLE:
            self._counters.add(GARBAGE_BYTES)
            self._synchronised = False
        elif state is _State.RECORD_START:
            if byte == _LF:
                self._record_sum += byte
                self._state = _State.LABEL
            else:
                self._drop(MALFORMED)
                self._step(byte)
        elif state is _State.LABEL:
            self._label_byte(byte)
        else:
            self._value_byte(byte)
        return None

    def _carriage_return(self, state: _State) -> None:
        """A '\\r' opens a record: it ends a value, or it opens a block."""
        if state is _State.VALUE:
            self._end_record()
        elif state is not _State.IDLE:
            # A '\r' inside a label (or a doubled one): the record is broken.
            self._drop(MALFORMED)
        if self._block is None:
            self._block = _Block()
        self._record_sum = _CR
        self._label.clear()
        self._value.clear()
        self._state = _State.RECORD_START

    def _label_byte(self, byte: int) -> None:
        self._record_sum += byte
        if byte == _TAB:
            self._end_label()
        elif byte == _LF:
            self._drop(MALFORMED)
        elif len(self._label) >= MAX_LABEL_BYTES:
            self._drop(OVERSIZE)
        else:
            self._label.append(byte)

    def _end_label(self) -> None:
        block = self._block
        assert block is not None
        label = self._label.decode("ascii", errors="replace")
        if label == CHECKSUM_LABEL:
            self._state = _State.CHECKSUM
            return
        if label in block.fields:
            # Every label appears once per block: seeing one again means the block in
            # progress was cut short and this record opens another one.
            self._counters.add(TRUNCATED)
            self._block = _Block()
            self._synchronised = False
        self._state = _State.VALUE

    def _value_byte(self, byte: int) -> None:
        self._record_sum += byte
        if byte == _LF:
            self._drop(MALFORMED)
        elif len(self._value) >= MAX_VALUE_BYTES:
            self._drop(OVERSIZE)
        else:
            self._value.append(byte)

    def _end_record(self) -> None:
        block = self._block
        assert block is not None
        if len(block.fields) >= MAX_RECORDS_PER_BLOCK:
            self._drop(OVERSIZE)
            return
        block.byte_sum += self._record_sum
        label = self._label.decode("ascii", errors="replace")
        block.fields[label] = self._value.decode("ascii", errors="replace")

    def _checksum_byte(self, byte: int) -> VeDirectBlock | None:
        block = self._block
        assert block is not None
        self._block = None
        self._state = _State.IDLE
        synchronised, self._synchronised = self._synchronised, True
        if (block.byte_sum + self._record_sum + byte) % 256 != 0:
            self._counters.add(BAD_CHECKSUM if synchronised else TRUNCATED)
            return None
        if not synchronised and next(iter(block.fields), None) not in BLOCK_OPENERS:
            self._counters.add(TRUNCATED)
            return None
        self._counters.add(BLOCKS)
        return VeDirectBlock(fields=block.fields)

    def _hex_byte(self, byte: int) -> None:
        if byte == _LF:
            self._counters.add(HEX_FRAMES)
            self._state = self._resume
            return
        self._hex_length += 1
        if byte in _HEX_DIGITS and self._hex_length <= MAX_HEX_FRAME_BYTES:
            return
        # Not a HEX frame after all (noise that looked like ':', or a frame cut short):
        # go back to the text and judge this byte there. Text bytes the false frame
        # swallowed are missing from the block's sum, and its checksum will say so.
        self._counters.add(OVERSIZE if self._hex_length > MAX_HEX_FRAME_BYTES else HEX_MALFORMED)
        self._state = self._resume
        self._step(byte)

    def _drop(self, reason: str) -> None:
        """Abandon the block in progress; the stream resynchronises at the next '\\r'."""
        block = self._block
        if block is not None and (block.fields or self._label):
            self._counters.add(reason)
        elif block is not None:
            # A stray '\r' outside any block opened nothing worth naming.
            self._counters.add(GARBAGE_BYTES)
        self._block = None
        self._synchronised = False
        self._state = _State.IDLE


# --- typed readings --------------------------------------------------------------------


@dataclass(frozen=True)
class BatteryMonitorReading:
    """A BMV-7xx / SmartShunt block, in SI-ish units.

    ``consumed_ah`` is positive for charge taken out since the battery was last full
    (the device's CE is negative mAh). ``time_to_go_min`` is None while not discharging.
    """

    product_id: str | None
    model: str | None
    firmware: str | None
    voltage_v: float | None
    starter_voltage_v: float | None
    current_a: float | None
    power_w: float | None
    consumed_ah: float | None
    soc_pct: float | None
    time_to_go_min: float | None
    alarm: bool | None
    alarm_reason: int | None
    relay_closed: bool | None

    kind: ClassVar[DeviceKind] = "bmv"


@dataclass(frozen=True)
class SolarChargerReading:
    """A SmartSolar / BlueSolar MPPT block, in SI-ish units (yields in kWh)."""

    product_id: str | None
    firmware: str | None
    serial_number: str | None
    battery_voltage_v: float | None
    battery_current_a: float | None
    pv_voltage_v: float | None
    pv_power_w: float | None
    charge_state_code: int | None
    charge_state: str | None
    tracker_mode: str | None
    error_code: int | None
    load_on: bool | None
    load_current_a: float | None
    yield_total_kwh: float | None
    yield_today_kwh: float | None
    max_power_today_w: float | None
    yield_yesterday_kwh: float | None
    max_power_yesterday_w: float | None
    day_sequence: int | None

    kind: ClassVar[DeviceKind] = "mppt"


Reading = BatteryMonitorReading | SolarChargerReading

# VE.Direct "CS" codes (state of operation).
CHARGE_STATES: Final[Mapping[int, str]] = {
    0: "off",
    1: "low_power",
    2: "fault",
    3: "bulk",
    4: "absorption",
    5: "float",
    6: "storage",
    7: "equalize",
    9: "inverting",
    11: "power_supply",
    245: "starting_up",
    246: "repeated_absorption",
    247: "recondition",
    248: "battery_safe",
    252: "external_control",
}
# VE.Direct "MPPT" codes (tracker operation mode).
TRACKER_MODES: Final[Mapping[int, str]] = {0: "off", 1: "limited", 2: "tracking"}
# VE.Direct "AR" bits (alarm reason).
ALARM_REASONS: Final[Mapping[int, str]] = {
    1: "low_voltage",
    2: "high_voltage",
    4: "low_soc",
    8: "low_starter_voltage",
    16: "high_starter_voltage",
    32: "low_temperature",
    64: "high_temperature",
    128: "mid_voltage",
}

_MPPT_LABELS: Final = frozenset({"VPV", "PPV", "CS", "MPPT", "H20", "H21", "H22", "H23"})
_BMV_LABELS: Final = frozenset({"SOC", "CE", "TTG", "BMV", "Alarm"})
_IDENTITY_LABELS: Final = frozenset({"PID", "FW", "BMV", "SER#"})


def alarm_reasons(mask: int) -> list[str]:
    """The names of the bits set in an AR mask, lowest first."""
    return [name for bit, name in ALARM_REASONS.items() if mask & bit]


class _Fields:
    """Reads one block's values; a value that does not parse is counted and left out."""

    def __init__(self, block: VeDirectBlock, counters: DeviceCounters) -> None:
        self._fields = block.fields
        self._counters = counters

    def text(self, label: str) -> str | None:
        value = self._fields.get(label)
        return None if value is None or value == _UNKNOWN else value

    def integer(self, label: str) -> int | None:
        value = self.text(label)
        if value is None:
            return None
        try:
            return int(value, 0) if value.lower().startswith("0x") else int(value)
        except ValueError:
            self._counters.add(BAD_VALUES)
            return None

    def scaled(self, label: str, scale: float) -> float | None:
        value = self.integer(label)
        return None if value is None else value * scale

    def on_off(self, label: str) -> bool | None:
        value = self.text(label)
        if value is None:
            return None
        if value.upper() in ("ON", "OFF"):
            return value.upper() == "ON"
        self._counters.add(BAD_VALUES)
        return None


def classify(block: VeDirectBlock) -> DeviceKind | Literal["history"] | None:
    """What sent the block: a battery monitor, a solar charger, or the BMV's history half."""
    labels = set(block.fields)
    if labels & _MPPT_LABELS:
        return "mppt"
    if labels & _BMV_LABELS:
        return "bmv"
    rest = labels - _IDENTITY_LABELS
    if rest and all(label.startswith("H") and label[1:].isdigit() for label in rest):
        return "history"
    return None


def decode_block(block: VeDirectBlock, counters: DeviceCounters) -> Reading | None:
    """The typed reading a block carries, or None (counted) when it carries none.

    The BMV's second block (H1..H18, history since the last reset) carries no present
    reading: it is counted in ``vedirect_history_blocks`` and skipped.
    """
    kind = classify(block)
    f = _Fields(block, counters)
    if kind == "bmv":
        soc = f.scaled("SOC", 0.1)
        if soc is not None and not 0 <= soc <= 100:
            counters.add(BAD_VALUES)
            soc = None
        ttg = f.integer("TTG")
        consumed_mah = f.integer("CE")
        return BatteryMonitorReading(
            product_id=f.text("PID"),
            model=f.text("BMV"),
            firmware=f.text("FW"),
            voltage_v=f.scaled("V", 0.001),
            starter_voltage_v=f.scaled("VS", 0.001),
            current_a=f.scaled("I", 0.001),
            power_w=f.scaled("P", 1.0),
            consumed_ah=None if consumed_mah is None else -consumed_mah / 1000,
            soc_pct=soc,
            # -1 means "infinite": the battery is not being discharged.
            time_to_go_min=float(ttg) if ttg is not None and ttg >= 0 else None,
            alarm=f.on_off("Alarm"),
            alarm_reason=f.integer("AR"),
            relay_closed=f.on_off("Relay"),
        )
    if kind == "mppt":
        cs = f.integer("CS")
        mppt = f.integer("MPPT")
        return SolarChargerReading(
            product_id=f.text("PID"),
            firmware=f.text("FW"),
            serial_number=f.text("SER#"),
            battery_voltage_v=f.scaled("V", 0.001),
            battery_current_a=f.scaled("I", 0.001),
            pv_voltage_v=f.scaled("VPV", 0.001),
            pv_power_w=f.scaled("PPV", 1.0),
            charge_state_code=cs,
            charge_state=None if cs is None else CHARGE_STATES.get(cs, f"code_{cs}"),
            tracker_mode=None if mppt is None else TRACKER_MODES.get(mppt, f"code_{mppt}"),
            error_code=f.integer("ERR"),
            load_on=f.on_off("LOAD"),
            load_current_a=f.scaled("IL", 0.001),
            yield_total_kwh=f.scaled("H19", 0.01),
            yield_today_kwh=f.scaled("H20", 0.01),
            max_power_today_w=f.scaled("H21", 1.0),
            yield_yesterday_kwh=f.scaled("H22", 0.01),
            max_power_yesterday_w=f.scaled("H23", 1.0),
            day_sequence=f.integer("HSDS"),
        )
    counters.add(HISTORY_BLOCKS if kind == "history" else UNKNOWN_BLOCKS)
    return None


def _connected(volts: float | None) -> float | None:
    # An auxiliary input with nothing on it reads a few millivolts either side of zero.
    return volts if volts is not None and volts > 1.0 else None


def to_energy_sample(
    reading: Reading, t: datetime, counters: DeviceCounters
) -> EnergySample | None:
    """The sample for the wire, stamped ``t``; None (counted) if a value is out of range."""
    try:
        if isinstance(reading, BatteryMonitorReading):
            return EnergySample(
                t=t,
                source="bmv",
                voltage_v=reading.voltage_v,
                current_a=reading.current_a,
                power_w=reading.power_w,
                soc_pct=reading.soc_pct,
                consumed_ah=reading.consumed_ah,
                time_to_go_min=reading.time_to_go_min,
                alarm=reading.alarm,
                alarm_reason=reading.alarm_reason,
                starter_voltage_v=_connected(reading.starter_voltage_v),
            )
        return EnergySample(
            t=t,
            source="mppt",
            voltage_v=reading.battery_voltage_v,
            current_a=reading.battery_current_a,
            pv_voltage_v=reading.pv_voltage_v,
            pv_power_w=reading.pv_power_w,
            charge_state=reading.charge_state,
            charger_error=reading.error_code,
            yield_today_kwh=reading.yield_today_kwh,
            yield_total_kwh=reading.yield_total_kwh,
        )
    except ValidationError:
        counters.add(REJECTED_SAMPLES)
        return None
