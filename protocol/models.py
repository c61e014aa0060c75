"""Payload models. Every message is one batch of timestamped samples of one stream.

A batch is identified by ``(vehicle, stream, seq)``: ``seq`` grows by one for every
batch a vehicle publishes on a stream and survives restarts of the agent, so the cloud
can drop a redelivered batch without double-counting it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final, Literal

import msgspec
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

SCHEMA_VERSION: Final = 1
MAX_SAMPLES_PER_BATCH: Final = 5000

Stream = Literal["gps", "energy", "fridge", "status", "event", "obd"]

# What every column of the system of record holds, on SQLite and PostgreSQL alike: a
# value outside these is refused here, with its reason, rather than failing in the store.
INT64_MAX: Final = 2**63 - 1
INT64_MIN: Final = -(2**63)
INT32_MAX: Final = 2**31 - 1


def _parse_time(value: object) -> object:
    """A time sent as text, read by msgspec's RFC 3339 parser, the one the ingest reads
    it with (:mod:`protocol.wire`): the two readings accept the same texts and round to
    the microsecond alike. Text that is not such a time is left for pydantic to refuse.
    """
    if isinstance(value, str):
        try:
            return msgspec.json.decode(msgspec.json.encode(value), type=datetime)
        except msgspec.ValidationError:
            raise ValueError(f"{value[:40]!r} is not an RFC 3339 date and time") from None
    return value


def _integer(value: object) -> object:
    """An integer given as one: pydantic's ``Literal`` takes ``true`` for 1 and ``3.0``
    for 3, which neither the contract nor the ingest's reading allows."""
    if type(value) is not int:
        raise ValueError(f"must be an integer, not {type(value).__name__}")
    return value


def to_utc(value: datetime) -> datetime:
    """``value`` in UTC, or a :class:`ValueError` if that leaves the calendar."""
    if value.tzinfo is UTC:
        return value
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:30+01:00 or 9999-12-31T23:59-01:00: no year 0 or 10000 in UTC.
        raise ValueError(
            f"{value.isoformat()} falls outside the years 1 to 9999 once converted to UTC"
        ) from None


def storable_text(value: str) -> str:
    """``value`` if a text column holds it: no NUL, no lone surrogate."""
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters (U+0000)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    return value


UtcDatetime = Annotated[AwareDatetime, BeforeValidator(_parse_time), AfterValidator(to_utc)]
Text = Annotated[str, AfterValidator(storable_text)]
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
# Vehicle ids travel in topics and URLs: keep them to a safe, readable alphabet.
VEHICLE_ID_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{0,62}$"
VehicleId = Annotated[str, Field(pattern=VEHICLE_ID_PATTERN)]


class _Model(BaseModel):
    # No Infinity or NaN: a reading is a number, and no column can compare or sum them.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class GpsSample(_Model):
    """One GPS epoch: a fix built from the NMEA sentences sharing one time."""

    t: UtcDatetime
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    alt_m: float | None = Field(default=None, ge=-1000, le=20000)
    speed_mps: float | None = Field(default=None, ge=0, le=200)
    course_deg: float | None = Field(default=None, ge=0, lt=360)
    fix_mode: Annotated[Literal[1, 2, 3], BeforeValidator(_integer)] = Field(
        description="1 no fix, 2 2D, 3 3D (as NMEA GSA)"
    )
    quality: int = Field(default=1, ge=0, le=8, description="GGA fix quality")
    sats: int | None = Field(default=None, ge=0, le=99)
    hdop: float | None = Field(default=None, ge=0, le=99.99)


class EnergySample(_Model):
    """Auxiliary battery (VE.Direct BMV) and solar charger (MPPT) readings."""

    t: UtcDatetime
    voltage_v: float | None = Field(default=None, ge=0, le=100)
    current_a: float | None = Field(default=None, ge=-1000, le=1000)
    power_w: float | None = None
    soc_pct: float | None = Field(default=None, ge=0, le=100)
    consumed_ah: float | None = None
    pv_power_w: float | None = Field(default=None, ge=0)
    yield_today_kwh: float | None = Field(default=None, ge=0)
    source: Literal["bmv", "mppt"] | None = Field(
        default=None, description="battery monitor (BMV, SmartShunt) or solar charger (MPPT)"
    )
    time_to_go_min: float | None = Field(
        default=None, ge=0, description="BMV estimate; absent while not discharging"
    )
    alarm: bool | None = None
    alarm_reason: int | None = Field(
        default=None,
        ge=0,
        le=INT32_MAX,
        description="VE.Direct AR bit mask (1 low voltage, 4 low SOC, ...)",
    )
    pv_voltage_v: float | None = Field(default=None, ge=0, le=1000)
    charge_state: Text | None = Field(
        default=None, max_length=32, description="MPPT state: bulk, absorption, float, ..."
    )
    charger_error: int | None = Field(
        default=None, ge=0, le=255, description="VE.Direct ERR code, 0 = no error"
    )
    yield_total_kwh: float | None = Field(default=None, ge=0)
    starter_voltage_v: float | None = Field(
        default=None, ge=0, le=100, description="BMV auxiliary input: the starter battery"
    )


class FridgeSample(_Model):
    """Medical fridge sensor readings (Modbus RTU)."""

    t: UtcDatetime
    temp_c: float | None = Field(default=None, ge=-50, le=80)
    humidity_pct: float | None = Field(default=None, ge=0, le=100)
    door_open: bool | None = None


class ObdSample(_Model):
    """The engine's readings through an OBD-II adapter (ELM327): what the engine control
    unit says it burns, the tank's level, and the odometer where the vehicle gives it."""

    t: UtcDatetime
    fuel_rate_l_per_h: float | None = Field(
        default=None, ge=0, le=3276.75, description="PID 5E, engine fuel rate"
    )
    fuel_level_pct: float | None = Field(
        default=None, ge=0, le=100, description="PID 2F, fuel tank level input"
    )
    odometer_km: float | None = Field(
        default=None, ge=0, le=429_496_729.5, description="PID A6, odometer"
    )


MAX_SEQ: Final = INT64_MAX  # a batch number fits a signed 64-bit column

Seq = Annotated[int, Field(ge=0, le=MAX_SEQ)]
CounterName = Annotated[Text, Field(min_length=1, max_length=128)]


class StatusSample(_Model):
    """Agent health and link state; published retained, with a last will."""

    t: UtcDatetime
    online: bool
    queue_depth: int = Field(default=0, ge=0, le=INT64_MAX)
    counters: dict[Text, Int64] = Field(default_factory=dict)
    errors: dict[CounterName, Annotated[Text, Field(max_length=512)]] = Field(
        default_factory=dict,
        description="per device, the last error that stopped its reader (it was restarted)",
    )
    held_from: dict[Stream, Seq] = Field(
        default_factory=dict,
        description="per stream, the lowest seq the bus still holds unconfirmed (or the "
        "next it will use): every lower seq is confirmed or given up, so the ingest's "
        "confirmation need not wait for it",
    )


class EventSample(_Model):
    """Something that happened on the bus (device lost, restart, ...)."""

    t: UtcDatetime
    kind: Text = Field(min_length=1, max_length=64)
    detail: Text = Field(default="", max_length=1024)


class _BatchBase(_Model):
    v: Annotated[Literal[1], BeforeValidator(_integer)] = Field(
        default=SCHEMA_VERSION, description="schema version"
    )
    vehicle: VehicleId
    seq: int = Field(ge=0, le=INT64_MAX, description="per (vehicle, stream), +1 per batch")


class GpsBatch(_BatchBase):
    stream: Literal["gps"] = "gps"
    samples: list[GpsSample] = Field(min_length=1, max_length=MAX_SAMPLES_PER_BATCH)


class EnergyBatch(_BatchBase):
    stream: Literal["energy"] = "energy"
    samples: list[EnergySample] = Field(min_length=1, max_length=MAX_SAMPLES_PER_BATCH)


class FridgeBatch(_BatchBase):
    stream: Literal["fridge"] = "fridge"
    samples: list[FridgeSample] = Field(min_length=1, max_length=MAX_SAMPLES_PER_BATCH)


class StatusBatch(_BatchBase):
    stream: Literal["status"] = "status"
    samples: list[StatusSample] = Field(min_length=1, max_length=MAX_SAMPLES_PER_BATCH)


class EventBatch(_BatchBase):
    stream: Literal["event"] = "event"
    samples: list[EventSample] = Field(min_length=1, max_length=MAX_SAMPLES_PER_BATCH)


class ObdBatch(_BatchBase):
    stream: Literal["obd"] = "obd"
    samples: list[ObdSample] = Field(min_length=1, max_length=MAX_SAMPLES_PER_BATCH)


class StoredConfirmation(_Model):
    """What the ingest has handled of one bus's batches, published retained on the bus's
    own confirmation topic: per stream, every batch with a seq up to ``stored[stream]``
    is stored, or refused for good, from the bus's ``held_from`` on. The bus deletes
    its batches up to there."""

    v: Literal[1] = Field(default=SCHEMA_VERSION, description="schema version")
    vehicle: VehicleId
    stored: dict[Stream, Seq]


Batch = Annotated[
    GpsBatch | EnergyBatch | FridgeBatch | StatusBatch | EventBatch | ObdBatch,
    Field(discriminator="stream"),
]
