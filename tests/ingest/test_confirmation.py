"""What the ingest confirms to a bus: the highest seq handled from the bus's floor on."""

from __future__ import annotations

import json

import pytest

from ingest.confirmation import MAX_TRACKED, Handled, StoredLedger, handled_batch, handled_of
from protocol import wire
from protocol.models import MAX_SEQ, StoredConfirmation

BUS = "vexin-01"


def gps(seq: int) -> Handled:
    return Handled(BUS, "gps", seq, {})


def status(seq: int, **floors: int) -> Handled:
    return Handled(BUS, "status", seq, dict(floors))  # type: ignore[arg-type]


def confirmed(ledger: StoredLedger) -> dict[str, int]:
    c = ledger.confirmation(BUS)
    return {stream: seq for stream, seq in c.stored.items()} if c is not None else {}


def test_nothing_is_confirmed_before_the_bus_has_said_where_it_starts() -> None:
    ledger = StoredLedger()
    for seq in (100, 101, 102):
        ledger.note(gps(seq))
    assert ledger.confirmation(BUS) is None
    ledger.note(status(7, gps=100, status=7))
    assert confirmed(ledger) == {"gps": 102, "status": 7}
    assert ledger.changed() == {BUS}
    assert ledger.changed() == set()


def test_a_missing_seq_holds_the_confirmation_until_it_is_handled() -> None:
    ledger = StoredLedger()
    ledger.note(status(1, gps=100))
    for seq in (100, 101, 103, 104):
        ledger.note(gps(seq))
    assert confirmed(ledger)["gps"] == 101
    ledger.note(gps(102))  # the bus sent it again
    assert confirmed(ledger)["gps"] == 104


def test_a_floor_past_a_seq_the_bus_will_never_send_closes_the_gap() -> None:
    """An evicted batch, or a last will the broker did not need: the bus's next status
    report starts above it."""
    ledger = StoredLedger()
    ledger.note(status(1, gps=100))
    for seq in (100, 102, 103):
        ledger.note(gps(seq))
    assert confirmed(ledger)["gps"] == 100
    ledger.note(status(2, gps=102))
    assert confirmed(ledger)["gps"] == 103
    # An older report (re-sent, or a last will set long ago) never moves it back.
    ledger.note(status(3, gps=50))
    assert confirmed(ledger)["gps"] == 103


def test_stored_batches_are_read_once_when_the_floor_is_learnt_and_once_per_gap() -> None:
    ledger = StoredLedger()
    ledger.note(gps(110))
    assert ledger.to_look_up() == []  # no floor yet: nothing to look for
    ledger.note(status(1, gps=100))
    assert ledger.to_look_up() == [(BUS, "gps", 100)]
    assert ledger.to_look_up() == []
    ledger.add_handled(BUS, "gps", list(range(100, 108)))  # stored before a restart
    assert confirmed(ledger)["gps"] == 107
    assert ledger.to_look_up() == [(BUS, "gps", 108)]  # 110 is handled, 108 and 109 not
    assert ledger.to_look_up() == []
    ledger.add_handled(BUS, "gps", [108, 109])
    assert confirmed(ledger)["gps"] == 110
    assert ledger.to_look_up() == []


def test_the_seqs_kept_beyond_a_gap_are_bounded() -> None:
    ledger = StoredLedger()
    ledger.note(status(1, gps=1))
    ledger.add_handled(BUS, "gps", list(range(2, MAX_TRACKED + 1000)))
    ledger.note(gps(1))
    # The highest went when the bound was passed; the bus re-sends them later.
    assert confirmed(ledger)["gps"] == MAX_TRACKED


def payload(seq: object, **extra: object) -> bytes:
    return json.dumps({"v": 1, "vehicle": BUS, "seq": seq, **extra}).encode()


def test_stored_copies_and_refusals_count_as_handled_but_not_an_unknown_vehicle() -> None:
    topic = f"medicobus/v1/{BUS}/gps"
    assert handled_batch(topic, payload(5), "stored") == Handled(BUS, "gps", 5, {})
    assert handled_batch(topic, payload(5), "duplicate") == Handled(BUS, "gps", 5, {})
    for reason in ("stale_timestamp", "future_timestamp", "invalid_schema", "store_failed"):
        assert handled_batch(topic, payload(5), "rejected", reason) is not None
    assert handled_batch(topic, payload(5), "rejected", "unknown_vehicle") is None


@pytest.mark.parametrize(
    ("body", "seq"),
    [
        (payload(12), 12),
        (b'{"samples": [{"seq": 1}], "seq": 7}', 7),
        (b'{"a\\"seq": 3, "seq": 8}', 8),
        (b'  {"seq":\n 9, "v": 1}', 9),
        (payload(MAX_SEQ), MAX_SEQ),
    ],
)
def test_the_seq_is_the_top_level_one_whatever_the_layout(body: bytes, seq: int) -> None:
    handled = handled_batch(f"medicobus/v1/{BUS}/gps", body, "stored")
    assert handled is not None
    assert handled.seq == seq


@pytest.mark.parametrize(
    ("topic", "body"),
    [
        (f"medicobus/v1/{BUS}/gps", b"not json"),
        (f"medicobus/v1/{BUS}/gps", b"[1, 2]"),
        (f"medicobus/v1/{BUS}/gps", payload(None)),
        (f"medicobus/v1/{BUS}/gps", payload(True)),
        (f"medicobus/v1/{BUS}/gps", payload(-1)),
        (f"medicobus/v1/{BUS}/gps", payload(MAX_SEQ + 1)),
        (f"medicobus/v1/{BUS}/gps", payload(1.5)),
        (f"medicobus/v1/{BUS}/gps", b'{"seq": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        (f"medicobus/v1/{BUS}/nope", payload(1)),
        ("elsewhere", payload(1)),
    ],
)
def test_a_message_without_a_readable_key_counts_for_nothing(topic: str, body: bytes) -> None:
    assert handled_batch(topic, body, "rejected", "invalid_schema") is None


def test_floors_come_from_status_reports_and_only_valid_ones_count() -> None:
    body = payload(
        9,
        samples=[
            {"held_from": {"gps": 100, "fridge": 7, "nope": 3, "energy": -1}},
            {"held_from": {"gps": 120, "event": MAX_SEQ, "status": True}},
            {"held_from": "\x00"},
            "odd",
        ],
    )
    topic = f"medicobus/v1/{BUS}/status"
    assert handled_batch(topic, body, "stored") == Handled(
        BUS, "status", 9, {"gps": 120, "fridge": 7, "event": MAX_SEQ}
    )
    # A refused report's floors are not believed: its seq is handled, nothing more.
    assert handled_batch(topic, body, "rejected", "invalid_schema") == Handled(BUS, "status", 9, {})


def test_the_confirmation_travels_as_the_protocol_says() -> None:
    ledger = StoredLedger()
    ledger.note(status(1, gps=MAX_SEQ - 1, status=1))
    ledger.note(gps(MAX_SEQ - 1))
    c = ledger.confirmation(BUS)
    assert c is not None
    again = StoredConfirmation.model_validate_json(c.model_dump_json())
    assert again.stored == {"gps": MAX_SEQ - 1, "status": 1}


@pytest.mark.parametrize(
    "samples",
    [
        [{"t": "2026-12-04T08:00:00Z", "online": True}],
        [
            {"t": "2026-12-04T08:00:00Z", "online": True, "held_from": {"gps": 4, "status": 9}},
            {"t": "2026-12-04T08:01:00Z", "online": True, "held_from": {"gps": 7, "obd": 0}},
            {"t": "2026-12-04T08:02:00Z", "online": False, "held_from": {"gps": 5}},
        ],
    ],
)
def test_a_decoded_batch_gives_the_key_its_payload_gives(samples: list[dict[str, object]]) -> None:
    """The writer takes a stored batch's key from the batch it decoded, not by reading
    the payload again: both give the same seq and the same floors."""
    topic = f"medicobus/v1/{BUS}/status"
    body = payload(MAX_SEQ, stream="status", samples=samples)
    assert handled_of(wire.decode(body, topic)) == handled_batch(topic, body, "stored")
    gps_body = payload(
        3,
        stream="gps",
        samples=[{"t": "2026-12-04T08:00:00Z", "lat": 49.0, "lon": 1.0, "fix_mode": 3}],
    )
    gps_topic = f"medicobus/v1/{BUS}/gps"
    assert handled_of(wire.decode(gps_body, gps_topic)) == gps(3)
