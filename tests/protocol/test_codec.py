from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import (
    MAX_PAYLOAD_BYTES,
    GpsBatch,
    GpsSample,
    ProtocolError,
    decode,
    encode,
    parse_topic,
    topic_for,
)
from protocol.topics import TopicError

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def gps_batch(seq: int = 0, vehicle: str = "vexin-01", n: int = 1) -> GpsBatch:
    samples = [
        GpsSample(t=T0 + timedelta(seconds=i), lat=49.2, lon=1.7, fix_mode=3) for i in range(n)
    ]
    return GpsBatch(vehicle=vehicle, seq=seq, samples=samples)


def test_round_trip_keeps_every_field() -> None:
    batch = GpsBatch(
        vehicle="caux-01",
        seq=41,
        samples=[
            GpsSample(
                t=T0,
                lat=49.6175,
                lon=0.7539,
                alt_m=120.5,
                speed_mps=13.9,
                course_deg=271.5,
                fix_mode=3,
                quality=1,
                sats=9,
                hdop=0.9,
            )
        ],
    )
    decoded = decode(encode(batch), "medicobus/v1/caux-01/gps")
    assert decoded == batch
    assert decoded.samples[0].t.tzinfo == UTC


def test_timestamps_are_converted_to_utc() -> None:
    paris = timezone(timedelta(hours=1))
    payload = encode(gps_batch()).replace(b"Z", b"").replace(b"09:00:00", b"10:00:00+01:00")
    batch = decode(payload)
    assert batch.samples[0].t == datetime(2026, 11, 23, 10, tzinfo=paris)
    assert batch.samples[0].t.utcoffset() == timedelta(0)


def test_topics() -> None:
    assert topic_for("vexin-01", "gps") == "medicobus/v1/vexin-01/gps"
    assert parse_topic("medicobus/v1/vexin-01/fridge") == ("vexin-01", "fridge")
    for bad in (
        "medicobus/v2/x/gps",
        "medicobus/v1/x/gps/extra",
        "medicobus/v1/X!/gps",
        "medicobus/v1/x/radio",
        "medicobus/v1/vexin-01\n/gps",
    ):
        with pytest.raises(TopicError):
            parse_topic(bad)
    with pytest.raises(TopicError):
        topic_for("vexin-01\n", "gps")


@pytest.mark.parametrize(
    ("payload", "reason", "words"),
    [
        (b"{not json", "malformed_json", "not valid JSON"),
        (b"\xff\xfe\x00", "malformed_json", "not valid JSON"),
        (b"[]", "invalid_schema", ""),
        (
            b'{"v": 2, "vehicle": "vexin-01", "stream": "gps", "seq": 1, "samples": []}',
            "unsupported_version",
            "schema version 2",
        ),
        (
            b'{"v": 1, "vehicle": "vexin-01", "stream": "gps", "seq": -1, "samples": []}',
            "invalid_schema",
            "seq",
        ),
        (
            b'{"v": 1, "vehicle": "vexin-01", "stream": "radio", "seq": 1, "samples": []}',
            "invalid_schema",
            "stream",
        ),
    ],
)
def test_invalid_payloads_have_readable_reasons(payload: bytes, reason: str, words: str) -> None:
    with pytest.raises(ProtocolError) as err:
        decode(payload)
    assert err.value.reason == reason
    assert words in err.value.detail


def test_naive_timestamp_is_rejected() -> None:
    doc = json.loads(encode(gps_batch()))
    doc["samples"][0]["t"] = "2026-11-23T09:00:00"
    with pytest.raises(ProtocolError) as err:
        decode(json.dumps(doc).encode())
    assert err.value.reason == "invalid_schema"
    assert "samples.0.t" in err.value.detail


def test_out_of_range_position_is_rejected() -> None:
    doc = json.loads(encode(gps_batch()))
    doc["samples"][0]["lat"] = 91.0
    with pytest.raises(ProtocolError) as err:
        decode(json.dumps(doc).encode())
    assert "samples.0.lat" in err.value.detail


def test_oversized_payload_is_rejected_before_parsing() -> None:
    with pytest.raises(ProtocolError) as err:
        decode(b" " * (MAX_PAYLOAD_BYTES + 1))
    assert err.value.reason == "oversized"


def test_payload_must_match_its_topic() -> None:
    with pytest.raises(ProtocolError) as err:
        decode(encode(gps_batch(vehicle="vexin-01")), "medicobus/v1/caux-01/gps")
    assert err.value.reason == "topic_mismatch"
    with pytest.raises(ProtocolError) as err:
        decode(encode(gps_batch()), "somewhere/else")
    assert err.value.reason == "bad_topic"


def test_unknown_fields_are_rejected() -> None:
    doc = json.loads(encode(gps_batch()))
    doc["patient"] = "Jeanne Dupont"
    with pytest.raises(ProtocolError) as err:
        decode(json.dumps(doc).encode())
    assert "patient" in err.value.detail


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2048))
def test_decoder_raises_only_its_own_error_on_bytes(payload: bytes) -> None:
    try:
        decode(payload, "medicobus/v1/vexin-01/gps")
    except ProtocolError as exc:
        assert exc.reason and exc.detail


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "v": json_values,
            "vehicle": st.sampled_from(["vexin-01", "", "X"]) | json_values,
            "stream": st.sampled_from(["gps", "energy", "fridge", "status", "event"]),
            "seq": st.integers(min_value=-5, max_value=2**70) | json_values,
            "samples": st.lists(
                st.dictionaries(
                    st.sampled_from(["t", "lat", "lon", "fix_mode", "temp_c", "online", "kind"]),
                    json_values | st.just("2026-11-23T09:00:00Z"),
                ),
                max_size=3,
            )
            | json_values,
        },
    )
)
def test_decoder_raises_only_its_own_error_on_json(doc: dict[str, object]) -> None:
    payload = json.dumps(doc, allow_nan=True).encode()
    try:
        batch = decode(payload)
    except ProtocolError as exc:
        assert exc.reason in {"malformed_json", "invalid_schema", "unsupported_version"}
    else:
        assert batch.samples


def test_deeply_nested_json_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        decode(b"[" * 100_000 + b"]" * 100_000)
