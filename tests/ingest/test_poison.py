"""A message the database refuses never holds up the others, on SQLite and PostgreSQL:
the protocol refuses what no column holds, and what the database still refuses is
quarantined on its own while the rest of its group is stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import generate_latest

from ingest.metrics import IngestMetrics
from ingest.pipeline import Ingestor, Message
from ingest.store import Store, database_unavailable
from ingest.tables.intake import rejections
from protocol import (
    EnergyBatch,
    EnergySample,
    EventBatch,
    EventSample,
    GpsBatch,
    GpsSample,
    ProtocolError,
    decode,
    encode,
    topic_for,
)

NOW = datetime.now(UTC).replace(microsecond=0)
POISON_LAT = 13.13


def gps(seq: int, vehicle: str = "vexin-01", lat: float = 49.24) -> GpsBatch:
    return GpsBatch(
        vehicle=vehicle,
        seq=seq,
        samples=[GpsSample(t=NOW - timedelta(seconds=seq), lat=lat, lon=1.63, fix_mode=3)],
    )


def message(batch: GpsBatch) -> Message:
    return Message(topic_for(batch.vehicle, batch.stream), encode(batch), NOW)


def refuse_latitude(store: Store, lat: float) -> None:
    """Make the database itself refuse a value the protocol accepts: a constraint only
    this test adds, so that the store fails on a batch that passed validation."""
    with store.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON gps_samples "
                f"WHEN NEW.lat = {lat} BEGIN SELECT RAISE(ABORT, 'latitude {lat} refused'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.lat = {lat} THEN RAISE EXCEPTION 'latitude {lat} refused' "
                "USING ERRCODE = '22003'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON gps_samples "
                "FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
            )


def kept_payloads(store: Store, reason: str) -> list[bytes]:
    c = rejections.c
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(c.payload).where(c.reason == reason).order_by(c.id))
        return [bytes(r[0]) for r in rows]


# --- the four examples -----------------------------------------------------------


def _poisons() -> dict[str, tuple[Any, dict[str, Any]]]:
    """Batches built without validation, as a faulty firmware could send them."""
    ok_t = NOW.isoformat()
    return {
        "nul": (
            EventBatch.model_construct(
                vehicle="vexin-01",
                seq=1,
                stream="event",
                samples=[EventSample.model_construct(t=NOW, kind="restart", detail="a\x00b")],
            ),
            {"stream": "event", "seq": 1, "samples": [{"t": ok_t, "kind": "a\x00b"}]},
        ),
        "seq": (
            GpsBatch.model_construct(
                vehicle="vexin-01",
                seq=2**63,
                stream="gps",
                samples=[GpsSample(t=NOW, lat=49.0, lon=1.0, fix_mode=3)],
            ),
            {
                "stream": "gps",
                "seq": 2**63,
                "samples": [{"t": ok_t, "lat": 49.0, "lon": 1.0, "fix_mode": 3}],
            },
        ),
        "time": (
            GpsBatch.model_construct(
                vehicle="vexin-01",
                seq=3,
                stream="gps",
                samples=[
                    GpsSample.model_construct(
                        t=datetime.fromisoformat("0001-01-01T00:30:00+01:00"),
                        lat=49.0,
                        lon=1.0,
                        fix_mode=3,
                        quality=1,
                    )
                ],
            ),
            {
                "stream": "gps",
                "seq": 3,
                "samples": [
                    {"t": "0001-01-01T00:30:00+01:00", "lat": 49.0, "lon": 1.0, "fix_mode": 3}
                ],
            },
        ),
        "energy_int": (
            EnergyBatch.model_construct(
                vehicle="vexin-01",
                seq=4,
                stream="energy",
                samples=[EnergySample.model_construct(t=NOW, alarm_reason=2**64)],
            ),
            {"stream": "energy", "seq": 4, "samples": [{"t": ok_t, "alarm_reason": 2**64}]},
        ),
        "infinity": (
            None,
            {"stream": "energy", "seq": 5, "samples": [{"t": ok_t, "pv_power_w": "Infinity"}]},
        ),
    }


@pytest.mark.parametrize("poison", ["nul", "seq", "time", "energy_int"])
def test_the_database_refusing_a_value_is_told_from_the_database_being_away(
    store: Store, poison: str
) -> None:
    batch, _ = _poisons()[poison]
    if poison == "nul" and store.engine.dialect.name == "sqlite":
        # SQLite keeps a NUL where PostgreSQL refuses it: the protocol refuses it for both.
        assert store.save_batches([(batch, NOW)]) == [True]
        return
    with pytest.raises(Exception) as caught:
        store.save_batches([(batch, NOW)])
    assert not database_unavailable(caught.value), caught.value
    assert store.count_batches() == 0


@pytest.mark.parametrize("poison", ["nul", "seq", "time", "energy_int", "infinity"])
def test_the_protocol_refuses_what_no_column_holds_with_its_reason(poison: str) -> None:
    _, doc = _poisons()[poison]
    payload = json.dumps({"v": 1, "vehicle": "vexin-01", **doc}).replace('"Infinity"', "Infinity")
    with pytest.raises(ProtocolError) as caught:
        decode(payload.encode(), topic_for("vexin-01", doc["stream"]))
    assert caught.value.reason == "invalid_schema"
    expected = {
        "nul": "NUL",
        "seq": "less than or equal to 9223372036854775807",
        "time": "outside the years 1 to 9999 once converted to UTC",
        "energy_int": "less than or equal to 2147483647",
        "infinity": "finite number",
    }[poison]
    assert expected in caught.value.detail


# --- isolation -------------------------------------------------------------------------------


def test_a_group_mixing_good_and_poison_batches_stores_every_good_one(store: Store) -> None:
    refuse_latitude(store, POISON_LAT)
    metrics = IngestMetrics()
    seen: list[tuple[str, int]] = []
    ingestor = Ingestor(
        store, metrics=metrics, observers=[lambda bs: seen.extend((b.vehicle, b.seq) for b in bs)]
    )
    ingestor.handle(topic_for("caux-01", "gps"), encode(gps(0, "caux-01")), NOW)
    poison_a, poison_b = gps(3, lat=POISON_LAT), gps(7, "caux-01", lat=POISON_LAT)
    group = [
        message(gps(1)),
        message(gps(2)),
        message(poison_a),
        Message(topic_for("vexin-01", "gps"), b"{not json", NOW),
        message(gps(4)),
        message(gps(0, "caux-01")),  # already stored
        message(gps(5, "caux-01")),
        message(gps(6, "caux-01")),
        message(poison_b),
        message(gps(8, "caux-01")),
        message(gps(4)),  # twice in the group
    ]
    outcomes = ingestor.handle_many(group)
    assert [(o.status, o.reason) for o in outcomes] == [
        ("stored", ""),
        ("stored", ""),
        ("rejected", "store_failed"),
        ("rejected", "malformed_json"),
        ("stored", ""),
        ("duplicate", ""),
        ("stored", ""),
        ("stored", ""),
        ("rejected", "store_failed"),
        ("stored", ""),
        ("duplicate", ""),
    ]
    assert store.count_batches("vexin-01") == 3
    assert store.count_batches("caux-01") == 4
    assert POISON_LAT not in {s.lat for s in store.gps_track("vexin-01")}
    assert store.rejection_counts() == {"store_failed": 2, "malformed_json": 1}
    failed = [r for r in store.recent_rejections() if r.reason == "store_failed"]
    assert all(f"latitude {POISON_LAT}" in r.detail for r in failed), failed
    assert {r.topic for r in failed} == {topic_for("vexin-01", "gps"), topic_for("caux-01", "gps")}
    # Kept whole: it can be taken in again once what refused it is fixed.
    assert kept_payloads(store, "store_failed") == [encode(poison_a), encode(poison_b)]
    assert sorted(seen) == sorted(
        [("caux-01", 0), ("vexin-01", 1), ("vexin-01", 2), ("vexin-01", 4)]
        + [("caux-01", s) for s in (5, 6, 8)]
    )
    exposed = generate_latest(metrics.registry).decode()
    assert 'medicobus_ingest_rejected_total{reason="store_failed"} 2.0' in exposed
    # The poison sent again (the broker redelivers) is quarantined again, nothing else.
    again = ingestor.handle_many([message(poison_a), message(gps(9))])
    assert [(o.status, o.reason) for o in again] == [("rejected", "store_failed"), ("stored", "")]


def test_a_database_that_cannot_take_writes_is_waited_for_not_blamed_on_the_data(
    database_url: str, store: Store
) -> None:
    """A SQLite file locked by another writer, or PostgreSQL with the table locked: the
    ingestor raises (its caller waits and offers the group again) and quarantines
    nothing."""
    if database_url.startswith("sqlite"):
        impatient = Store(sa.create_engine(database_url, connect_args={"timeout": 0.3}))
    else:
        options = {"options": "-c lock_timeout=300"}
        impatient = Store(sa.create_engine(database_url, connect_args=options))
    ingestor = Ingestor(impatient)
    holder = store.engine.connect()
    try:
        if holder.dialect.name == "sqlite":
            holder.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            holder.exec_driver_sql("LOCK TABLE batches IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(sa.exc.OperationalError) as caught:
            ingestor.handle_many([message(gps(1)), message(gps(2, lat=POISON_LAT))])
        assert database_unavailable(caught.value)
    finally:
        holder.rollback()
        holder.close()
    assert store.rejection_counts() == {}
    assert store.count_batches() == 0
    outcomes = ingestor.handle_many([message(gps(1)), message(gps(2))])
    assert [o.status for o in outcomes] == ["stored", "stored"]
    impatient.close()
