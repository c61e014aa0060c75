"""The two readings of the wire contract agree: the pydantic models (what the agent builds
and the JSON Schema) and the msgspec structs (what the ingest decodes) give the same
verdict, with the same reason, and the same values, on one corpus of payloads: every
stream, every bound of every field at and past its limit, every type a field must
refuse, times at the ends of the calendar, and random changes of valid batches."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from protocol import codec, wire
from protocol.models import INT64_MAX, INT64_MIN, MAX_SAMPLES_PER_BATCH
from protocol.streams import BY_NAME, STREAMS
from protocol.topics import topic_for
from tests.ingest.field_limits import TIME_LIMITS, batch_payload

T0 = "2026-12-04T08:00:00Z"

# One valid sample per stream with every field set, and the fields each one needs.
FULL: dict[str, dict[str, Any]] = {
    "gps": {
        "t": T0,
        "lat": 49.2,
        "lon": 1.7,
        "alt_m": 120.5,
        "speed_mps": 12.0,
        "course_deg": 90.0,
        "fix_mode": 3,
        "quality": 1,
        "sats": 9,
        "hdop": 0.9,
    },
    "energy": {
        "t": T0,
        "voltage_v": 12.9,
        "current_a": -4.2,
        "power_w": -54.0,
        "soc_pct": 81.5,
        "consumed_ah": -12.0,
        "pv_power_w": 120.0,
        "yield_today_kwh": 0.8,
        "source": "bmv",
        "time_to_go_min": 600.0,
        "alarm": False,
        "alarm_reason": 0,
        "pv_voltage_v": 38.0,
        "charge_state": "bulk",
        "charger_error": 0,
        "yield_total_kwh": 120.0,
        "starter_voltage_v": 12.6,
    },
    "fridge": {"t": T0, "temp_c": 5.1, "humidity_pct": 40.0, "door_open": False},
    "status": {
        "t": T0,
        "online": True,
        "queue_depth": 3,
        "counters": {"gps.sentences": 120},
        "errors": {"fridge": "no answer from unit 1"},
        "held_from": {"gps": 17},
    },
    "event": {"t": T0, "kind": "device_lost", "detail": "fridge"},
    "obd": {"t": T0, "fuel_rate_l_per_h": 4.5, "fuel_level_pct": 60.0, "odometer_km": 12000.0},
}
REQUIRED = {
    name: [n for n, f in spec.sample.model_fields.items() if f.is_required()]
    for name, spec in BY_NAME.items()
}

DECODERS: dict[str, Callable[..., Any]] = {"pydantic": codec.decode, "msgspec": wire.decode}


def doc(kind: str, /, *samples: dict[str, Any], **batch: Any) -> dict[str, Any]:
    """A batch of ``kind`` with ``samples`` (one full sample if none), ``batch`` changing
    its own fields."""
    return {
        "v": 1,
        "vehicle": "vexin-01",
        "stream": kind,
        "seq": 0,
        "samples": list(samples) or [dict(FULL[kind])],
        **batch,
    }


def raw(value: dict[str, Any]) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def plain(value: Any) -> Any:
    """A decoded batch as builtins, types kept (5 and 5.0 differ), times in UTC text."""
    if isinstance(value, BaseModel):
        return plain({name: getattr(value, name) for name in type(value).model_fields})
    if isinstance(value, msgspec.Struct):
        out = {name: getattr(value, name) for name in wire.fields(type(value))}
        if hasattr(value, "stream"):
            out["stream"] = value.stream
        return plain(out)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        assert value.utcoffset() == timedelta(0)
        return ("time", value.isoformat())
    return (type(value).__name__, value)


def verdict(name: str, payload: bytes, topic: str | None = None) -> tuple[str, Any]:
    try:
        batch = DECODERS[name](payload, topic)
    except codec.ProtocolError as exc:
        assert exc.detail
        return ("rejected", exc.reason)
    return ("stored", plain(batch))


def assert_same(payload: bytes, topic: str | None = None) -> tuple[str, Any]:
    models, structs = verdict("pydantic", payload, topic), verdict("msgspec", payload, topic)
    assert models == structs, payload[:300]
    return models


# --- the corpus ---------------------------------------------------------------------------


def _bounds(model: type[BaseModel], name: str) -> list[Any]:
    annotation = model.model_fields[name]
    return list(annotation.metadata)


def _just_past(value: float, up: bool) -> float:
    return math.nextafter(value, math.inf if up else -math.inf)


def bound_cases() -> Iterator[tuple[str, bytes, str]]:
    """Every field's limits, at the limit and just past it (expected verdict given)."""
    for spec in STREAMS:
        for name, info in spec.sample.model_fields.items():
            base = info.annotation
            numeric_int = "int" in str(base) and "float" not in str(base)
            for limit in _bounds(spec.sample, name):
                cases: list[tuple[Any, str]] = []
                match limit:
                    case Ge(ge=v):
                        cases = [
                            (v, "stored"),
                            (v - 1 if numeric_int else _just_past(v, False), "rejected"),
                        ]
                    case Gt(gt=v):
                        cases = [(v, "rejected")]
                    case Le(le=v):
                        cases = [
                            (v, "stored"),
                            (v + 1 if numeric_int else _just_past(v, True), "rejected"),
                        ]
                    case Lt(lt=v):
                        cases = [(_just_past(v, False), "stored"), (v, "rejected")]
                    case MaxLen(max_length=n) if n < 10_000:
                        cases = [("a" * n, "stored"), ("a" * (n + 1), "rejected")]
                    case MinLen(min_length=n):
                        cases = [("a" * n, "stored")] + ([("", "rejected")] if n else [])
                for value, expected in cases:
                    sample = {**FULL[spec.name], name: value}
                    yield f"{spec.name}.{name}={value!r}", raw(doc(spec.name, sample)), expected


ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    1,
    -1,
    1.5,
    3.0,
    "",
    "3",
    "text",
    "a\x00b",
    INT64_MAX,
    INT64_MAX + 1,
    INT64_MIN,
    INT64_MIN - 1,
    2**64,
    10**30,
    1e308,
    -1e308,
    math.nan,
    math.inf,
    -math.inf,
    [],
    {},
    [1],
    {"a": 1},
    T0,
]


def type_cases() -> Iterator[tuple[str, bytes]]:
    """Every field of every sample, and of the batch, given every odd value."""
    for spec in STREAMS:
        for name in spec.sample.model_fields:
            for value in ODD_VALUES:
                yield (
                    f"{spec.name}.{name}={value!r}",
                    raw(doc(spec.name, {**FULL[spec.name], name: value})),
                )
            missing = {k: v for k, v in FULL[spec.name].items() if k != name}
            yield f"{spec.name} without {name}", raw(doc(spec.name, missing))
        only = {k: FULL[spec.name][k] for k in REQUIRED[spec.name]}
        yield f"{spec.name} with its required fields only", raw(doc(spec.name, only))
        yield (
            f"{spec.name} with an unknown field",
            raw(doc(spec.name, {**FULL[spec.name], "patient": "Jeanne"})),
        )
    for name in ("v", "vehicle", "stream", "seq", "samples"):
        for value in ODD_VALUES:
            yield f"batch.{name}={value!r}", raw(doc("gps", **{name: value}))
        yield f"batch without {name}", raw({k: v for k, v in doc("gps").items() if k != name})


# Ways of writing a time, beside the times at the ends of the calendar of field_limits.
TIMES = [
    "2026-12-04T08:00:00Z",
    "2026-12-04T08:00:00+00:00",
    "2026-12-04T08:00:00-00:00",
    "2026-12-04T09:00:00+01:00",
    "2026-12-04T02:30:00-05:30",
    "2026-12-04T08:00:00.5Z",
    "2026-12-04T08:00:00.123456Z",
    "2026-12-04T08:00:00.1234567Z",
    "2026-12-04T08:00:00.123456789Z",
    "2026-12-04T08:00Z",
    "2026-12-04",
    "2026-12-04 08:00:00Z",
    "2026-12-04t08:00:00z",
    "2026-12-04T08:00:00+0100",
    "2026-12-04T08:00:00+01",
    "2026-12-04T24:00:00Z",
    "2024-02-29T08:00:00Z",
    "2026-13-01T08:00:00Z",
    "10000-01-01T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "2026-12-04T08:00:00+24:00",
    " 2026-12-04T08:00:00Z",
    *TIME_LIMITS,
]


def time_cases() -> Iterator[tuple[str, bytes]]:
    for t in TIMES:
        yield f"t={t!r}", raw(doc("fridge", {**FULL["fridge"], "t": t}))
    for t in (0, 1_764_835_200, 1_764_835_200.5, -1):
        yield f"t={t!r}", raw(doc("fridge", {**FULL["fridge"], "t": t}))


def batch_cases() -> Iterator[tuple[str, bytes]]:
    gps = FULL["gps"]
    for vehicle in ("vexin-01", "", "a", "A", "-a", "a_b", "a" * 63, "a" * 64, "vexin-01\n"):
        yield f"vehicle={vehicle!r}", raw(doc("gps", vehicle=vehicle))
    for seq in (0, INT64_MAX, INT64_MAX + 1, -1):
        yield f"seq={seq}", raw(doc("gps", seq=seq))
    for n in (0, 1, MAX_SAMPLES_PER_BATCH, MAX_SAMPLES_PER_BATCH + 1):
        yield f"{n} samples", raw({**doc("gps"), "samples": [gps] * n})
    for stream in ("radio", "GPS", "", "status"):
        yield f"stream={stream!r}", raw(doc("gps", stream=stream))
    yield "version 2", raw(doc("gps", v=2))
    yield "version 2 of bad samples", raw(doc("gps", {"t": 1}, v=2))
    status = FULL["status"]
    for key, value in (
        ("counters", {"a\x00": 1}),
        ("counters", {"a": INT64_MAX + 1}),
        ("counters", {"": 0}),
        ("errors", {"": "x"}),
        ("errors", {"d" * 128: "x"}),
        ("errors", {"d" * 129: "x"}),
        ("errors", {"d": "x" * 512}),
        ("errors", {"d": "x" * 513}),
        ("errors", {"d": "x\x00"}),
        ("errors", {"d\x00": "x"}),
        ("held_from", {"radio": 1}),
        ("held_from", {"gps": -1}),
        ("held_from", {"gps": INT64_MAX}),
        ("held_from", {"obd": 0, "status": 3}),
    ):
        yield f"status.{key}={value!r}", raw(doc("status", {**status, key: value}))


EVENT = b'{"v":1,"vehicle":"vexin-01","stream":"event","seq":0,"samples":[{"t":"%s",' % T0.encode()
FRIDGE = b'{"v":1,"vehicle":"vexin-01","stream":"fridge","seq":0,"samples":[{"t":"%s"' % T0.encode()
BATCH = b'{"v":1,"stream":"gps","vehicle":"vexin-01","seq":0,"samples":'
TEXTS = [
    EVENT + b'"kind":"a\\ud800"}]}',
    EVENT + b'"kind":"\\ud83d\\ude8c"}]}',
    EVENT + b'"kind":"\xc3\xa9t\xc3\xa9"}]}',
    EVENT + b'"kind":"\xff"}]}',
    EVENT + b'"kind":"a\\u0000"}]}',
    EVENT + b'"kind":"a\tb"}]}',
    EVENT + b'"kind":"a\nb"}]}',
    FRIDGE + b',"temp_c":1e400}]}',
    FRIDGE + b',"temp_c":-0.0}]}',
    FRIDGE + b',"temp_c":5E-1}]}',
    FRIDGE + b',"temp_c":05}]}',
    FRIDGE + b',"temp_c":.5}]}',
    FRIDGE + b',"temp_c":NaN}]}',
    FRIDGE + b',"temp_c":-Infinity}]}',
    FRIDGE + b',"temp_c":5,"temp_c":6}]}',
    FRIDGE + b"}]} ",
    FRIDGE + b"}]}x",
    FRIDGE + b"}]}{}",
    b"\xef\xbb\xbf" + FRIDGE + b"}]}",
    b"",
    b"null",
    b"1",
    b'"gps"',
    b"[]",
    b"{",
    b"{}",
    b"[" * 10_000 + b"]" * 10_000,
    BATCH + b"[" * 5000 + b"]" * 5000 + b"}",
    BATCH + b"[" + b"[" * 5000 + b"]" * 5000 + b"]}",
    b'{"v":2,' + b"[" * 5000,
    b" " * (codec.MAX_PAYLOAD_BYTES + 1),
]


def corpus() -> Iterator[tuple[str, bytes]]:
    for spec in STREAMS:
        yield f"{spec.name}, every field", raw(doc(spec.name))
    yield from ((name, payload) for name, payload, _ in bound_cases())
    yield from type_cases()
    yield from time_cases()
    yield from batch_cases()
    yield from ((f"text {i}", payload) for i, payload in enumerate(TEXTS))


CORPUS = list(corpus())


@pytest.mark.parametrize(("name", "payload"), CORPUS, ids=[n for n, _ in CORPUS])
def test_both_readings_give_the_same_verdict(name: str, payload: bytes) -> None:
    assert_same(payload)


def test_the_corpus_holds_every_reason_and_both_verdicts() -> None:
    """What the comparison above covers, so that a corpus that stops testing is seen."""
    verdicts = [verdict("msgspec", payload) for _, payload in CORPUS]
    reasons = {v[1] for v in verdicts if v[0] == "rejected"}
    assert reasons == {"malformed_json", "invalid_schema", "unsupported_version", "oversized"}
    stored = sum(v[0] == "stored" for v in verdicts)
    assert 100 < stored < len(verdicts) - 300


@pytest.mark.parametrize(("name", "payload", "expected"), list(bound_cases()))
def test_every_bound_holds_at_its_limit_and_refuses_past_it(
    name: str, payload: bytes, expected: str
) -> None:
    assert assert_same(payload)[0] == expected


def test_the_topic_is_checked_alike() -> None:
    payload = raw(doc("gps"))
    assert assert_same(payload, topic_for("vexin-01", "gps"))[0] == "stored"
    assert assert_same(payload, topic_for("caux-01", "gps")) == ("rejected", "topic_mismatch")
    assert assert_same(payload, topic_for("vexin-01", "fridge")) == ("rejected", "topic_mismatch")
    assert assert_same(payload, "somewhere/else") == ("rejected", "bad_topic")


def test_times_are_read_in_utc_alike() -> None:
    payload = raw(doc("fridge", {**FULL["fridge"], "t": "2026-12-04T09:00:00+01:00"}))
    (sample,) = wire.decode(payload).samples
    assert sample.t == datetime(2026, 12, 4, 8, tzinfo=UTC) and sample.t.tzinfo is UTC


def test_the_structs_have_the_models_fields_in_order_with_their_defaults() -> None:
    for spec in STREAMS:
        struct = spec.struct_sample
        assert wire.fields(struct) == tuple(spec.sample.model_fields), spec.name
        defaults = {
            n: f.get_default(call_default_factory=True)
            for n, f in spec.sample.model_fields.items()
            if not f.is_required()
        }
        required = {k: FULL[spec.name][k] for k in REQUIRED[spec.name]}
        built = wire.decode(raw(doc(spec.name, required))).samples[0]
        assert {n: getattr(built, n) for n in defaults} == defaults, spec.name
        assert spec.struct_batch.stream == spec.name


def test_the_ingest_reads_what_the_agent_encodes() -> None:
    for spec in STREAMS:
        model = spec.batch.model_validate(doc(spec.name))
        assert plain(wire.decode(codec.encode(model))) == plain(model)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(TIMES),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=500, deadline=None)
@given(
    stream=st.sampled_from([s.name for s in STREAMS]),
    changes=st.dictionaries(st.text(min_size=1, max_size=12), json_values, max_size=3),
    batch_changes=st.dictionaries(
        st.sampled_from(["v", "vehicle", "stream", "seq", "extra"]), json_values, max_size=2
    ),
    field_changes=st.data(),
)
def test_random_changes_of_valid_batches_get_the_same_verdict(
    stream: str, changes: dict[str, Any], batch_changes: dict[str, Any], field_changes: Any
) -> None:
    names = list(FULL[stream])
    picked = field_changes.draw(
        st.dictionaries(st.sampled_from(names), json_values | st.floats(), max_size=3)
    )
    sample = {**FULL[stream], **changes, **picked}
    assert_same(raw(doc(stream, sample, **batch_changes)))


@settings(max_examples=500, deadline=None)
@given(batch_payload())
def test_batches_at_the_limits_of_every_field_get_the_same_verdict(
    drawn: tuple[str, bytes],
) -> None:
    """The strategies the ingest's own limit tests draw from (values at and past every
    field's bounds, odd text, times at the ends of the calendar)."""
    _, payload = drawn
    assert_same(payload)
