"""Stored fridge alarms follow the stored readings, whatever the order they arrive in."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from ingest.alerts import storage as alerts_storage
from ingest.coldchain import storage
from ingest.coldchain.rules import ColdChainConfig, Reading, assess
from ingest.itinerary import Itinerary
from ingest.settings import DomainSettings
from ingest.store import Store
from protocol import FridgeBatch, FridgeSample
from protocol.clock import ManualClock
from tests.support.domain import domain_ingestor, feed

T0 = datetime(2026, 1, 6, 5, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def temperatures() -> list[float]:
    """In range, an early warning, a heat alarm, a freeze alarm, a short cold spell, then
    a warm run still going on at the end."""
    return (
        [5.0] * 30
        + [9.0] * 45
        + [5.0] * 30
        + [10.0] * 605
        + [5.0] * 20
        + [-1.0] * 65
        + [1.0] * 20
        + [5.0] * 10
        + [8.5] * 40
    )


def samples(temps: Sequence[float], start: datetime = T0) -> list[FridgeSample]:
    return [FridgeSample(t=start + i * MIN, temp_c=t) for i, t in enumerate(temps)]


def batches(vehicle: str, chunks: Sequence[Sequence[FridgeSample]]) -> list[FridgeBatch]:
    return [FridgeBatch(vehicle=vehicle, seq=i, samples=list(c)) for i, c in enumerate(chunks) if c]


def shown(store: Store, vehicle: str) -> list[tuple[object, ...]]:
    return sorted(
        (a.kind, a.key, a.run_start, a.run_end, a.raised_at, a.peak_c, a.ongoing)
        for a in storage.list_alarms(store.engine, vehicle_ids=[vehicle])
    )


def test_alarms_are_the_same_whatever_the_order_of_arrival(
    store: Store, itinerary: Itinerary
) -> None:
    all_samples = samples(temperatures())
    expected = sorted(
        (a.kind, a.key, a.run.start, a.run.end, a.raised_at, a.peak_c, a.run.ongoing)
        for a in assess([Reading(s.t, s.temp_c) for s in all_samples], ColdChainConfig()).alarms
    )
    assert [e[0] for e in expected].count("early_warning") == 3
    assert {e[0] for e in expected} == {"early_warning", "heat", "freeze"}
    chunks = [all_samples[i : i + 37] for i in range(0, len(all_samples), 37)]
    shuffled = list(chunks)
    random.Random(5).shuffle(shuffled)
    domain, ingestor = domain_ingestor(
        store, itinerary, DomainSettings(), ManualClock(T0 + timedelta(days=1))
    )
    received = T0 + timedelta(days=1)
    for b in batches("vexin-01", chunks):
        feed(ingestor, [b], received)
    for b in batches("caux-01", shuffled):
        feed(ingestor, [b], received)
    assert shown(store, "vexin-01") == expected
    assert shown(store, "caux-01") == expected
    # Recomputing everything from storage changes nothing.
    assert domain.coldchain.rebuild("vexin-01").plan.empty


def test_readings_filling_the_gap_that_cut_a_run_end_it_as_in_order(
    store: Store, itinerary: Itinerary
) -> None:
    """A warm run, then readings back in range: the ones just after the run arrive last.
    Until then the run looks cut by a gap; in range readings that fill the gap end it
    where readings in order would."""
    warm_then_back = samples([5.0] * 10 + [10.5] * 50 + [5.0] * 40)
    expected = sorted(
        (a.kind, a.key, a.run.start, a.run.end, a.raised_at, a.peak_c, a.run.ongoing)
        for a in assess([Reading(s.t, s.temp_c) for s in warm_then_back], ColdChainConfig()).alarms
    )
    assert expected and all(not e[-1] for e in expected)
    before, warm, just_after, later = (
        warm_then_back[:10],
        warm_then_back[10:60],
        warm_then_back[60:80],  # longer than max_sample_spacing (15 min)
        warm_then_back[80:],
    )
    _, ingestor = domain_ingestor(
        store, itinerary, DomainSettings(), ManualClock(T0 + timedelta(days=1))
    )
    received = T0 + timedelta(days=1)
    for b in batches("caux-01", [before, warm, later, just_after]):
        feed(ingestor, [b], received)
    assert shown(store, "caux-01") == expected


def test_late_readings_move_an_alarm_without_losing_its_acknowledgement(
    store: Store, itinerary: Itinerary
) -> None:
    _, ingestor = domain_ingestor(
        store, itinerary, DomainSettings(), ManualClock(T0 + timedelta(days=1))
    )
    received = T0 + timedelta(hours=3)
    feed(ingestor, batches("vexin-01", [samples([9.0] * 40 + [5.0], T0 + 10 * MIN)]), received)
    (alarm,) = storage.list_alarms(store.engine, vehicle_ids=["vexin-01"])
    assert alarm.key == f"early_warning@{(T0 + 10 * MIN).isoformat()}"
    with store.engine.begin() as conn:
        assert storage.acknowledge_alarm(conn, alarm.id, "Camille", received, "checked")
    # The outbox of the bus delivers the ten minutes before it, later.
    late = FridgeBatch(vehicle="vexin-01", seq=1, samples=samples([5.0] + [9.0] * 10, T0 - MIN))
    feed(ingestor, [late], received)
    (moved,) = storage.list_alarms(store.engine, vehicle_ids=["vexin-01"])
    assert moved.id == alarm.id
    assert moved.key == f"early_warning@{T0.isoformat()}"
    assert moved.raised_at == T0 + 30 * MIN
    assert (moved.ack_by, moved.ack_comment) == ("Camille", "checked")


def test_a_late_reading_in_range_withdraws_the_alarm_and_clears_its_alert(
    store: Store, itinerary: Itinerary
) -> None:
    clock = ManualClock(T0 + timedelta(hours=1))
    domain, ingestor = domain_ingestor(store, itinerary, DomainSettings(), clock)
    warm = [s for s in samples([9.0] * 41) if s.t != T0 + 20 * MIN]
    feed(ingestor, batches("vexin-01", [warm]), T0 + 41 * MIN)
    (alarm,) = storage.list_alarms(store.engine, vehicle_ids=["vexin-01"])
    assert alarm.ongoing
    domain.alerts.evaluate()
    (alert,) = alerts_storage.list_alerts(store.engine, kinds=["fridge_early_warning"])
    assert alert.active and alert.subject == str(alarm.id)
    # The reading at 06:20 was in range: two runs of 20 minutes, no early warning.
    fixed = FridgeBatch(
        vehicle="vexin-01", seq=1, samples=[FridgeSample(t=T0 + 20 * MIN, temp_c=5.0)]
    )
    feed(ingestor, [fixed], T0 + 42 * MIN)
    domain.alerts.evaluate()
    assert storage.list_alarms(store.engine, vehicle_ids=["vexin-01"]) == []
    (withdrawn,) = storage.list_alarms(
        store.engine, vehicle_ids=["vexin-01"], include_withdrawn=True
    )
    assert withdrawn.id == alarm.id and withdrawn.withdrawn_at == clock.now()
    (after,) = alerts_storage.list_alerts(store.engine, kinds=["fridge_early_warning"])
    assert after.id == alert.id and not after.active


def test_readings_in_range_are_cheap_yet_end_an_ongoing_alarm(
    store: Store, itinerary: Itinerary
) -> None:
    domain, _ = domain_ingestor(
        store, itinerary, DomainSettings(), ManualClock(T0 + timedelta(days=1))
    )
    monitor = domain.coldchain

    def arrive(seq: int, temps: list[float], start: datetime) -> int:
        batch = FridgeBatch(vehicle="vexin-01", seq=seq, samples=samples(temps, start))
        assert store.save_batch(batch, start)
        return len(monitor.on_batches([batch]))

    # In range, nothing stored near: not even recomputed.
    assert arrive(0, [5.0] * 30, T0) == 0
    assert arrive(1, [9.0] * 40, T0 + 30 * MIN) == 1
    (alarm,) = storage.list_alarms(store.engine, vehicle_ids=["vexin-01"])
    assert alarm.ongoing
    # Back in range two hours later (after a gap): the run is over, the alarm too.
    assert arrive(2, [5.0] * 5, T0 + 3 * timedelta(hours=1)) == 1
    (ended,) = storage.list_alarms(store.engine, vehicle_ids=["vexin-01"])
    assert (ended.id, ended.ongoing, ended.cut_by_gap) == (alarm.id, False, True)
    assert arrive(3, [5.0] * 5, T0 + 4 * timedelta(hours=1)) == 0
