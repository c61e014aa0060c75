from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_agent.batching import Sample, sample_json, samples_that_fit
from edge_agent.outbox import Outbox, OutboxError, OutboxLimits
from protocol.codec import MAX_PAYLOAD_BYTES, decode
from protocol.models import EnergySample, FridgeSample, GpsSample, StatusSample
from protocol.streams import BY_NAME

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
VEHICLE = "caux-01"


def gps(i: int) -> GpsSample:
    return GpsSample(t=T0 + timedelta(seconds=i), lat=49.6, lon=0.75, fix_mode=3, speed_mps=9.5)


def fridge(i: int) -> FridgeSample:
    return FridgeSample(t=T0 + timedelta(seconds=5 * i), temp_c=4.5, door_open=False)


def energy(i: int) -> EnergySample:
    return EnergySample(t=T0 + timedelta(seconds=i), voltage_v=12.8, current_a=-3.2, soc_pct=81)


def store(path: Path, samples: Sequence[Sample], **limits: int) -> Outbox:
    outbox = Outbox(path, VEHICLE, OutboxLimits(**limits))
    with outbox.transaction() as tx:
        tx.add(samples)
    return outbox


def size(sample: Sample) -> int:
    return len(sample_json(sample))


def times(samples: Sequence[Sample]) -> list[datetime]:
    return [s.t for s in samples]


def test_a_backlog_leaves_in_large_numbered_batches_oldest_first(tmp_path: Path) -> None:
    outbox = store(tmp_path / "outbox.sqlite", [gps(i) for i in range(1200)])
    with outbox.transaction() as tx:
        assert tx.form_batches(10) == 3
    batches = outbox.batches_after(0, 10)
    first = batches[0].seq
    assert [(b.stream, b.seq - first, b.samples) for b in batches] == [
        ("gps", 0, 500),
        ("gps", 1, 500),
        ("gps", 2, 200),
    ]
    decoded = [decode(b.payload) for b in batches]
    assert times([s for b in decoded for s in b.samples]) == times([gps(i) for i in range(1200)])
    assert outbox.depth == 1200
    assert outbox.batches_after(batches[0].id, 10) == batches[1:]
    outbox.close()


def test_streams_take_turns_so_none_waits_behind_another_backlog(tmp_path: Path) -> None:
    samples: Sequence[Sample] = [*[gps(i) for i in range(1000)], fridge(0)]
    outbox = store(tmp_path / "outbox.sqlite", samples)
    with outbox.transaction() as tx:
        assert tx.form_batches(2) == 2
    assert [b.stream for b in outbox.batches_after(0, 10)] == ["gps", "fridge"]
    outbox.close()


def test_a_batch_keeps_its_seq_and_bytes_across_a_restart_until_acknowledged(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.sqlite"
    outbox = store(path, [gps(i) for i in range(3)])
    with outbox.transaction() as tx:
        tx.form_batches(10)
    formed = outbox.batches_after(0, 10)
    outbox.close()  # as if killed before the PUBACK

    reopened = Outbox(path, VEHICLE)
    assert reopened.batches_after(0, 10) == formed
    assert reopened.depth == 3
    with reopened.transaction() as tx:
        tx.add([gps(3)])
        tx.form_batches(10)
    # New samples get the next number, never the resent batch's.
    first = formed[0].seq
    assert [b.seq - first for b in reopened.batches_after(0, 10)] == [0, 1]
    with reopened.transaction() as tx:
        assert tx.remove_batches([formed[0].id, 9999]) == 1
    assert [b.seq - first for b in reopened.batches_after(0, 10)] == [1]
    assert reopened.depth == 1
    reopened.close()


def test_a_failed_transaction_changes_nothing(tmp_path: Path) -> None:
    outbox = store(tmp_path / "outbox.sqlite", [gps(0)])
    usage = outbox.usage()
    with pytest.raises(RuntimeError), outbox.transaction() as tx:
        tx.add([gps(1), gps(2)])
        tx.form_batches(10)
        raise RuntimeError("disk pulled out")
    assert outbox.depth == 1
    assert outbox.usage() == usage
    assert outbox.batches_after(0, 10) == []
    with outbox.transaction() as tx:
        tx.form_batches(10)
    (batch,) = outbox.batches_after(0, 10)
    with outbox.transaction() as tx:
        tx.add([gps(3)])
        tx.form_batches(10)
    # Numbering goes on from the batch formed after the failure.
    assert [b.seq - batch.seq for b in outbox.batches_after(0, 10)] == [0, 1]
    outbox.close()


def test_over_the_bound_the_oldest_gps_fixes_go_and_the_fridge_stays(tmp_path: Path) -> None:
    fixes = [gps(i) for i in range(100)]
    temps = [fridge(i) for i in range(20)]
    bound = sum(map(size, temps)) + 40 * size(fixes[0])
    outbox = store(tmp_path / "outbox.sqlite", [*fixes, *temps], max_bytes=bound)
    with outbox.transaction() as tx:
        evicted = tx.evict()
    assert evicted == {"gps": 60}
    kept = outbox.stored_samples()
    assert times(kept["gps"]) == times(fixes[60:])
    assert times(kept["fridge"]) == times(temps)
    assert sum(outbox.usage().values()) <= bound
    outbox.close()


def test_the_fridge_gives_up_samples_only_once_gps_and_energy_are_gone(tmp_path: Path) -> None:
    temps = [fridge(i) for i in range(20)]
    others: Sequence[Sample] = [*[gps(i) for i in range(10)], *[energy(i) for i in range(10)]]
    bound = sum(map(size, temps[5:]))
    outbox = store(tmp_path / "outbox.sqlite", [*others, *temps], max_bytes=bound)
    with outbox.transaction() as tx:
        evicted = tx.evict()
    assert evicted == {"gps": 10, "energy": 10, "fridge": 5}
    assert times(outbox.stored_samples()["fridge"]) == times(temps[5:])
    assert outbox.depth == 15
    outbox.close()


def test_formed_batches_are_given_up_whole_and_before_newer_samples(tmp_path: Path) -> None:
    outbox = store(tmp_path / "outbox.sqlite", [gps(i) for i in range(10)], max_bytes=10**6)
    with outbox.transaction() as tx:
        tx.form_batches(1)
        tx.add([gps(i) for i in range(10, 20)])
    kept_bytes = outbox.usage()["gps"] - 1
    outbox.close()
    reopened = Outbox(tmp_path / "outbox.sqlite", VEHICLE, OutboxLimits(max_bytes=kept_bytes))
    with reopened.transaction() as tx:
        assert tx.evict() == {"gps": 10}
    assert reopened.batches_after(0, 10) == []
    assert times(reopened.stored_samples()["gps"]) == times([gps(i) for i in range(10, 20)])
    reopened.close()


def test_big_samples_are_split_so_every_payload_fits(tmp_path: Path) -> None:
    counters = {f"device.counter_{i:04d}": i for i in range(400)}
    statuses = [
        StatusSample(t=T0 + timedelta(seconds=i), online=False, counters=counters)
        for i in range(60)
    ]
    assert sum(map(size, statuses)) > MAX_PAYLOAD_BYTES
    outbox = store(tmp_path / "outbox.sqlite", list(statuses))
    with outbox.transaction() as tx:
        tx.form_batches(100)
    batches = outbox.batches_after(0, 100)
    assert len(batches) >= 2
    assert all(len(b.payload) <= MAX_PAYLOAD_BYTES for b in batches)
    assert sum(b.samples for b in batches) == 60
    outbox.close()


def test_samples_that_fit_counts_sizes_and_commas() -> None:
    assert samples_that_fit([], 10, 100) == 0
    assert samples_that_fit([10, 10, 10], 10, 32) == 3
    assert samples_that_fit([10, 10, 10], 10, 31) == 2
    assert samples_that_fit([10, 10, 10], 2, 1000) == 2
    assert samples_that_fit([500, 10], 10, 100) == 1


def test_a_stored_sample_that_no_longer_validates_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    store(path, [gps(0)]).close()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO sample (stream, body) VALUES ('gps', ?)", (b'{"t": "yesterday"}',))
    db.execute("INSERT INTO sample (stream, body) VALUES ('gps', ?)", (b"not json",))
    db.commit()
    db.close()
    outbox = store(path, [gps(1)])
    with outbox.transaction() as tx:
        tx.form_batches(10)
        assert tx.rejected == 2
    [batch] = outbox.batches_after(0, 10)
    assert times(decode(batch.payload).samples) == [gps(0).t, gps(1).t]
    assert outbox.depth == 2
    outbox.close()


def test_a_file_that_is_not_an_outbox_gets_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    path.write_bytes(b"this is not a database, just some bytes" * 100)
    with pytest.raises(OutboxError, match=r"outbox\.sqlite: not a usable outbox database"):
        Outbox(path, VEHICLE)


def test_confirmed_batches_go_and_the_floor_says_what_the_bus_still_holds(
    tmp_path: Path,
) -> None:
    outbox = store(tmp_path / "outbox.sqlite", [gps(i) for i in range(1500)] + [fridge(0)])
    outbox.number_streams()
    before = outbox.held_from()
    # Every stream has a floor, numbered or not: nothing of it is held yet.
    assert set(before) == set(BY_NAME)
    with outbox.transaction() as tx:
        tx.form_batches(10)
    batches = outbox.batches_after(0, 10)
    gps_seqs = [b.seq for b in batches if b.stream == "gps"]
    assert gps_seqs == [before["gps"], before["gps"] + 1, before["gps"] + 2]
    assert outbox.held_from()["gps"] == before["gps"]
    # The ingest confirmed the first two GPS batches, and a seq of a stream not held.
    with outbox.transaction() as tx:
        removed = tx.remove_confirmed({"gps": gps_seqs[1], "energy": before["energy"] + 5})
    confirmed = [b for b in batches if b.stream == "gps" and b.seq in gps_seqs[:2]]
    assert sorted(removed) == sorted(b.id for b in confirmed)
    assert outbox.held_from()["gps"] == gps_seqs[2]
    assert outbox.depth == 500 + 1
    assert outbox.batches_by_id([b.id for b in batches]) == [
        b for b in batches if b not in confirmed
    ]
    # A confirmation again, or an older one, changes nothing.
    with outbox.transaction() as tx:
        assert tx.remove_confirmed({"gps": gps_seqs[1]}) == []
    outbox.number_streams()  # numbers already given stay
    assert outbox.held_from()["gps"] == gps_seqs[2]
    outbox.close()
