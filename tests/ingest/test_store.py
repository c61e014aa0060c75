"""The system of record, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest.pipeline import Ingestor
from ingest.store import Store, VehicleRow
from protocol import (
    EnergyBatch,
    EnergySample,
    FridgeBatch,
    FridgeSample,
    GpsBatch,
    GpsSample,
    ObdBatch,
    ObdSample,
    StatusBatch,
    StatusSample,
    encode,
    topic_for,
)

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def gps(seq: int, t: datetime, lat: float = 49.24) -> GpsBatch:
    return GpsBatch(
        vehicle="vexin-01",
        seq=seq,
        samples=[GpsSample(t=t, lat=lat, lon=1.63, speed_mps=10.0, course_deg=90, fix_mode=3)],
    )


def test_a_batch_is_stored_once(store: Store) -> None:
    assert store.save_batch(gps(0, T0), T0) is True
    assert store.save_batch(gps(0, T0), T0 + timedelta(seconds=5)) is False
    assert store.count_batches("vexin-01") == 1
    assert len(store.gps_track("vexin-01")) == 1


def test_same_seq_on_another_stream_or_vehicle_is_not_a_duplicate(store: Store) -> None:
    fridge = FridgeBatch(vehicle="vexin-01", seq=0, samples=[FridgeSample(t=T0, temp_c=4.2)])
    other = GpsBatch(
        vehicle="caux-01", seq=0, samples=[GpsSample(t=T0, lat=49.6, lon=0.75, fix_mode=2)]
    )
    assert store.save_batch(gps(0, T0), T0)
    assert store.save_batch(fridge, T0)
    assert store.save_batch(other, T0)
    assert store.count_batches() == 3


def test_late_batch_does_not_move_the_live_position_back(store: Store) -> None:
    store.save_batch(gps(5, T0 + timedelta(minutes=5), lat=49.30), T0 + timedelta(minutes=5))
    store.save_batch(gps(4, T0, lat=49.20), T0 + timedelta(minutes=6))  # outbox catching up
    (position,) = [p for p in store.positions() if p.vehicle == "vexin-01"]
    assert position.lat == 49.30
    assert position.t == T0 + timedelta(minutes=5)
    assert position.last_seen == T0 + timedelta(minutes=6)
    assert [s.t for s in store.gps_track("vexin-01")] == [T0, T0 + timedelta(minutes=5)]


def test_times_come_back_as_aware_utc(store: Store) -> None:
    store.save_batch(gps(0, T0), T0)
    (sample,) = store.gps_track("vexin-01")
    assert sample.t == T0
    assert sample.t.tzinfo is not None


def status(seq: int, t: datetime, online: bool) -> StatusBatch:
    return StatusBatch(vehicle="vexin-01", seq=seq, samples=[StatusSample(t=t, online=online)])


def test_live_state_moves_only_forward_in_time_per_field(store: Store) -> None:
    def vexin() -> VehicleRow:
        return {v.id: v for v in store.vehicles()}["vexin-01"]

    fresh = T0 + timedelta(minutes=10)
    store.save_batch(gps(0, fresh, lat=49.30), fresh)
    store.save_batch(status(0, fresh, online=True), fresh)
    energy = EnergyBatch(
        vehicle="vexin-01", seq=0, samples=[EnergySample(t=fresh, soc_pct=80, voltage_v=12.9)]
    )
    store.save_batch(energy, fresh)
    store.save_batch(
        FridgeBatch(vehicle="vexin-01", seq=0, samples=[FridgeSample(t=fresh, temp_c=4.0)]), fresh
    )
    # Older news received later: a status from an outbox catching up, an agent's last
    # will composed when it connected, readings of a replayed drive.
    later = fresh + timedelta(minutes=1)
    store.save_batch(status(1, T0 + timedelta(minutes=2), online=False), later)
    store.save_batch(status(2, T0, online=False), later)
    store.save_batch(gps(1, T0, lat=49.10), later)
    old_energy = EnergyBatch(
        vehicle="vexin-01", seq=1, samples=[EnergySample(t=T0, soc_pct=15, voltage_v=11.5)]
    )
    store.save_batch(old_energy, later)
    store.save_batch(
        FridgeBatch(vehicle="vexin-01", seq=1, samples=[FridgeSample(t=T0, temp_c=12.0)]), later
    )
    # Received in a batch whose reception time is older (a slow writer): last contact stays.
    store.save_batch(gps(2, T0 + timedelta(minutes=1)), fresh - timedelta(minutes=5))
    row = vexin()
    assert row.online is True
    assert (row.soc_pct, row.battery_v, row.energy_t) == (80, 12.9, fresh)
    assert (row.fridge_temp_c, row.fridge_t) == (4.0, fresh)
    assert row.last_seen == later
    (position,) = [p for p in store.positions() if p.vehicle == "vexin-01"]
    assert (position.lat, position.t, position.online) == (49.30, fresh, True)
    # A status newer than everything held says offline ...
    store.save_batch(status(3, fresh + timedelta(minutes=2), online=False), later)
    assert vexin().online is False
    # ... until a sample newer than it shows the link back.
    store.save_batch(gps(3, fresh + timedelta(minutes=3)), later)
    assert vexin().online is True


def test_ingestor_quarantines_and_counts(store: Store) -> None:
    ingestor = Ingestor(store)
    now = datetime.now(UTC)
    topic = topic_for("vexin-01", "gps")
    assert ingestor.handle(topic, encode(gps(0, now)), now).status == "stored"
    assert ingestor.handle(topic, encode(gps(0, now)), now).status == "duplicate"
    outcome = ingestor.handle(topic, b"nope", now)
    assert (outcome.status, outcome.reason) == ("rejected", "malformed_json")
    assert store.rejection_counts() == {"malformed_json": 1}
    (rejection,) = store.recent_rejections()
    assert rejection.payload_head == "nope"
    assert rejection.topic == topic
    assert ingestor.counters["stored_samples"] == 1


def test_observers_see_only_newly_stored_batches(store: Store) -> None:
    seen: list[list[int]] = []
    ingestor = Ingestor(store, observers=[lambda batches: seen.append([b.seq for b in batches])])

    def boom(batches: object) -> None:
        raise RuntimeError("a broken observer")

    ingestor.add_observer(boom)
    now = datetime.now(UTC)
    topic = topic_for("vexin-01", "gps")
    from ingest.pipeline import Message

    outcomes = ingestor.handle_many(
        [Message(topic, encode(gps(seq, now)), now) for seq in (0, 1, 1, 2)]
        + [Message(topic, b"bad", now)]
    )
    assert [o.status for o in outcomes] == ["stored", "stored", "duplicate", "stored", "rejected"]
    assert seen == [[0, 1, 2]]
    assert ingestor.handle(topic, encode(gps(1, now)), now).status == "duplicate"
    assert seen == [[0, 1, 2]]


def test_retention_prunes_old_samples_and_keys_only(store: Store) -> None:
    from ingest.retention import RetentionPruner
    from protocol.clock import ManualClock

    old, recent = T0 - timedelta(days=500), T0 - timedelta(days=2)
    store.save_batch(gps(0, old), old)
    store.save_batch(gps(1, recent), recent)
    store.save_batch(
        FridgeBatch(vehicle="vexin-01", seq=0, samples=[FridgeSample(t=old, temp_c=5.0)]), old
    )
    store.save_batch(
        ObdBatch(vehicle="vexin-01", seq=0, samples=[ObdSample(t=old, fuel_rate_l_per_h=4.0)]),
        old,
    )
    store.quarantine("medicobus/v1/x/gps", b"{", "malformed_json", "not JSON", old)
    pruner = RetentionPruner(store, keep_days=400, clock=ManualClock(T0))
    removed = pruner.prune_once()
    assert removed["gps_samples"] == 1
    assert removed["fridge_samples"] == 1
    assert removed["obd_samples"] == 1
    assert removed["batches"] == 3
    assert removed["rejections"] == 1
    assert [s.t for s in store.gps_track("vexin-01")] == [recent]
    assert store.count_batches() == 1
    assert pruner.prune_once() == dict.fromkeys(removed, 0)


def test_retention_must_outlive_the_age_limit(tmp_path: Path) -> None:
    from firmware_config.loader import ConfigError, load_settings
    from ingest.settings import IngestSettings

    config = tmp_path / "ingest.toml"
    config.write_text('itinerary_file = "x.toml"\nmax_age_days = 30\nretention_days = 20\n')
    with pytest.raises(ConfigError, match="retention_days"):
        load_settings(IngestSettings, config)


def test_the_store_opens_only_sqlite_and_postgresql() -> None:
    from ingest.sql_dialects import UnsupportedDatabaseError

    with pytest.raises(UnsupportedDatabaseError, match="unsupported database 'mysql'"):
        Store.open("mysql://root@localhost/x")
