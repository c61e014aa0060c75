"""The wire contract as the cloud reads it: the payload models of :mod:`protocol.models`
as msgspec structs, decoded and checked in compiled code.

The ingest takes tens of thousands of messages a second, and pydantic's validation of
a batch costs several times msgspec's decoding of it. The pydantic models stay what the
agent builds its batches with (a sample is checked as it is made) and what the JSON
Schema is generated from; these structs are what the ingest decodes, stores and derives
from. They hold the same fields, in the same order, with the same bounds and defaults:
``tests/protocol/test_wire.py`` feeds one corpus of payloads (every stream, every bound,
every reason of rejection) to both and asserts the same verdict and the same values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, ClassVar, Final, Literal, NoReturn

import msgspec
import pydantic_core
from msgspec import Meta
from msgspec.structs import force_setattr

from protocol.codec import ProtocolError, check_envelope, check_topic, check_version
from protocol.models import (
    INT32_MAX,
    INT64_MAX,
    INT64_MIN,
    MAX_SAMPLES_PER_BATCH,
    SCHEMA_VERSION,
    VEHICLE_ID_PATTERN,
    Stream,
    storable_text,
    to_utc,
)

Time = Annotated[datetime, Meta(tz=True)]
Int64 = Annotated[int, Meta(ge=INT64_MIN, le=INT64_MAX)]
Seq = Annotated[int, Meta(ge=0, le=INT64_MAX)]
# msgspec searches with Python's ``re``, where ``$`` also matches before a last newline;
# pydantic's engine does not: ``\Z`` is the end of the text in ``re``.
VehicleId = Annotated[str, Meta(pattern=VEHICLE_ID_PATTERN.removesuffix("$") + r"\Z")]
CounterName = Annotated[str, Meta(min_length=1, max_length=128)]


def _check_text(*values: str | None) -> None:
    """The models' ``Text``, for each value given."""
    for value in values:
        if value is not None:
            storable_text(value)


class _Sample(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    t: Time

    def __post_init__(self) -> None:
        if self.t.tzinfo is not UTC:
            force_setattr(self, "t", to_utc(self.t))


class GpsSample(_Sample, frozen=True, kw_only=True, forbid_unknown_fields=True):
    lat: Annotated[float, Meta(ge=-90, le=90)]
    lon: Annotated[float, Meta(ge=-180, le=180)]
    alt_m: Annotated[float, Meta(ge=-1000, le=20000)] | None = None
    speed_mps: Annotated[float, Meta(ge=0, le=200)] | None = None
    course_deg: Annotated[float, Meta(ge=0, lt=360)] | None = None
    fix_mode: Literal[1, 2, 3]
    quality: Annotated[int, Meta(ge=0, le=8)] = 1
    sats: Annotated[int, Meta(ge=0, le=99)] | None = None
    hdop: Annotated[float, Meta(ge=0, le=99.99)] | None = None


class EnergySample(_Sample, frozen=True, kw_only=True, forbid_unknown_fields=True):
    voltage_v: Annotated[float, Meta(ge=0, le=100)] | None = None
    current_a: Annotated[float, Meta(ge=-1000, le=1000)] | None = None
    power_w: float | None = None
    soc_pct: Annotated[float, Meta(ge=0, le=100)] | None = None
    consumed_ah: float | None = None
    pv_power_w: Annotated[float, Meta(ge=0)] | None = None
    yield_today_kwh: Annotated[float, Meta(ge=0)] | None = None
    source: Literal["bmv", "mppt"] | None = None
    time_to_go_min: Annotated[float, Meta(ge=0)] | None = None
    alarm: bool | None = None
    alarm_reason: Annotated[int, Meta(ge=0, le=INT32_MAX)] | None = None
    pv_voltage_v: Annotated[float, Meta(ge=0, le=1000)] | None = None
    charge_state: Annotated[str, Meta(max_length=32)] | None = None
    charger_error: Annotated[int, Meta(ge=0, le=255)] | None = None
    yield_total_kwh: Annotated[float, Meta(ge=0)] | None = None
    starter_voltage_v: Annotated[float, Meta(ge=0, le=100)] | None = None

    def __post_init__(self) -> None:
        _check_text(self.charge_state)
        super().__post_init__()


class FridgeSample(_Sample, frozen=True, kw_only=True, forbid_unknown_fields=True):
    temp_c: Annotated[float, Meta(ge=-50, le=80)] | None = None
    humidity_pct: Annotated[float, Meta(ge=0, le=100)] | None = None
    door_open: bool | None = None


class ObdSample(_Sample, frozen=True, kw_only=True, forbid_unknown_fields=True):
    fuel_rate_l_per_h: Annotated[float, Meta(ge=0, le=3276.75)] | None = None
    fuel_level_pct: Annotated[float, Meta(ge=0, le=100)] | None = None
    odometer_km: Annotated[float, Meta(ge=0, le=429_496_729.5)] | None = None


class StatusSample(_Sample, frozen=True, kw_only=True, forbid_unknown_fields=True):
    online: bool
    queue_depth: Annotated[int, Meta(ge=0, le=INT64_MAX)] = 0
    counters: dict[str, Int64] = msgspec.field(default_factory=dict)
    errors: dict[CounterName, Annotated[str, Meta(max_length=512)]] = msgspec.field(
        default_factory=dict
    )
    held_from: dict[Stream, Seq] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_text(*self.counters, *self.errors, *self.errors.values())
        super().__post_init__()


class EventSample(_Sample, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: Annotated[str, Meta(min_length=1, max_length=64)]
    detail: Annotated[str, Meta(max_length=1024)] = ""

    def __post_init__(self) -> None:
        _check_text(self.kind, self.detail)
        super().__post_init__()


class _Batch(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="stream"
):
    v: Literal[1] = SCHEMA_VERSION
    vehicle: VehicleId
    seq: Seq


class GpsBatch(_Batch, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="gps"):
    stream: ClassVar[Literal["gps"]] = "gps"
    samples: Annotated[list[GpsSample], Meta(min_length=1, max_length=MAX_SAMPLES_PER_BATCH)]


class EnergyBatch(_Batch, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="energy"):
    stream: ClassVar[Literal["energy"]] = "energy"
    samples: Annotated[list[EnergySample], Meta(min_length=1, max_length=MAX_SAMPLES_PER_BATCH)]


class FridgeBatch(_Batch, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="fridge"):
    stream: ClassVar[Literal["fridge"]] = "fridge"
    samples: Annotated[list[FridgeSample], Meta(min_length=1, max_length=MAX_SAMPLES_PER_BATCH)]


class StatusBatch(_Batch, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="status"):
    stream: ClassVar[Literal["status"]] = "status"
    samples: Annotated[list[StatusSample], Meta(min_length=1, max_length=MAX_SAMPLES_PER_BATCH)]


class EventBatch(_Batch, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="event"):
    stream: ClassVar[Literal["event"]] = "event"
    samples: Annotated[list[EventSample], Meta(min_length=1, max_length=MAX_SAMPLES_PER_BATCH)]


class ObdBatch(_Batch, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="obd"):
    stream: ClassVar[Literal["obd"]] = "obd"
    samples: Annotated[list[ObdSample], Meta(min_length=1, max_length=MAX_SAMPLES_PER_BATCH)]


Batch = GpsBatch | EnergyBatch | FridgeBatch | StatusBatch | EventBatch | ObdBatch
Sample = GpsSample | EnergySample | FridgeSample | StatusSample | EventSample | ObdSample

_DECODER: Final = msgspec.json.Decoder(Batch)


def fields(struct: type[msgspec.Struct]) -> tuple[str, ...]:
    """A struct's field names, in order."""
    return struct.__struct_fields__


def decode(payload: bytes, topic: str | None = None) -> Batch:
    """Decode and check one message; raise only :class:`ProtocolError`, with the reasons
    of :func:`protocol.codec.decode`.

    When ``topic`` is given, the vehicle and stream in the payload must match it.
    """
    topic_parts = check_envelope(payload, topic)
    try:
        batch = _DECODER.decode(payload)
    except msgspec.DecodeError as exc:
        _refuse(payload, exc)
    check_topic(batch.vehicle, batch.stream, topic_parts, topic)
    return batch


def _readable(error: msgspec.ValidationError) -> str:
    """msgspec's message with its place first, written as the pydantic codec writes it:
    ``samples.0.lat: Expected ...`` for ``Expected ... - at `$.samples[0].lat```."""
    text = str(error)
    message, found, where = text.rpartition(" - at `$")
    if not found:
        return text
    path = where.rstrip("`").replace("[", ".").replace("]", "").lstrip(".")
    return f"{path or 'payload'}: {message}"


def _refuse(payload: bytes, error: msgspec.DecodeError) -> NoReturn:
    """Why msgspec refused ``payload``, in :func:`protocol.codec.decode`'s reasons.

    Whether the payload is JSON at all is asked of pydantic's parser, the one the
    models read with: msgspec stops at the first value of a wrong type, before it would
    find the payload malformed further on, and it refuses NaN and Infinity, which
    pydantic's parser reads (and the models then refuse as not finite).
    """
    try:
        doc = pydantic_core.from_json(payload)
    except ValueError as exc:
        raise ProtocolError("malformed_json", f"not valid JSON ({exc})") from None
    check_version(doc)
    if isinstance(error, msgspec.ValidationError):
        raise ProtocolError("invalid_schema", _readable(error))
    raise ProtocolError("invalid_schema", f"every number must be a finite number ({error})")
