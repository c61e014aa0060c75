"""Ingests sharing a database: a vehicle derived by one at a time, an ingest told when
another moved a vehicle on, one leader, and the groups an ingest stored but did not
derive derived again — by another ingest when it died, by itself when an observer
failed. Real PostgreSQL for what several ingests share; SQLite too for one alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from ingest.alerts.evaluator import AlertEvaluator
from ingest.alerts.rules import HealthThresholds
from ingest.derivation import Derivation
from ingest.itinerary import Itinerary
from ingest.pipeline import Ingestor
from ingest.store import Coordinator, Store
from ingest.store.coordination import backlog
from ingest.tables.alerts import alerts
from protocol import EnergyBatch, EnergySample, GpsBatch, GpsSample, encode, topic_for
from protocol.clock import ManualClock
from protocol.models import Batch
from tests.support.databases import postgres_available, postgres_database

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture
def shared_store(itinerary: Itinerary) -> Iterator[Store]:
    why = postgres_available()
    if why is not None:
        pytest.skip(why)
    with postgres_database() as url:
        store = Store.open(url)
        store.load_fleet(itinerary)
        yield store
        store.close()


@pytest.fixture
def coordinators(shared_store: Store) -> Iterator[list[Coordinator]]:
    """Two ingests on the database, each with its own engine (its own connections)."""
    url = shared_store.engine.url.render_as_string(hide_password=False)
    engines = [sa.create_engine(url) for _ in range(2)]
    made = [Coordinator(e, shared=True) for e in engines]
    for c in made:
        c.start()
    yield made
    for c in made:
        c.stop()
    for e in engines:
        e.dispose()


def gps(seq: int, start: datetime, n: int = 5, vehicle: str = "vexin-01") -> GpsBatch:
    return GpsBatch(
        vehicle=vehicle,
        seq=seq,
        samples=[
            GpsSample(
                t=start + timedelta(seconds=10 * i),
                lat=49.2 + 0.001 * i,
                lon=1.6,
                speed_mps=8.0,
                fix_mode=3,
            )
            for i in range(n)
        ],
    )


class Recorder:
    """An observer keeping what it was given; fails ``failures`` times first."""

    def __init__(self, failures: int = 0) -> None:
        self.calls: list[list[Batch]] = []
        self.failures = failures

    def __call__(self, batches: Sequence[Batch]) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("observer down")
        self.calls.append(list(batches))

    def fix_times(self) -> list[datetime]:
        return sorted(
            s.t for call in self.calls for b in call if b.stream == "gps" for s in b.samples
        )


def test_one_vehicle_is_derived_by_one_ingest_at_a_time_others_go_on(
    coordinators: list[Coordinator],
) -> None:
    a, b = coordinators
    order: list[str] = []
    inside = threading.Event()
    leave = threading.Event()

    def hold() -> None:
        with a.vehicle("vexin-01"):
            inside.set()
            leave.wait(10)
            order.append("a leaves")

    def enter() -> None:
        with b.vehicle("vexin-01"):
            order.append("b enters")

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(10)
    waiter = threading.Thread(target=enter)
    waiter.start()
    # Another vehicle is not held up.
    with b.vehicle("caux-01"):
        order.append("b on caux-01")
    waiter.join(0.5)
    assert waiter.is_alive(), "b derived vexin-01 while a held it"
    leave.set()
    holder.join(10)
    waiter.join(10)
    assert order == ["b on caux-01", "a leaves", "b enters"]


def test_an_ingest_is_told_when_another_derived_the_vehicle_since(
    coordinators: list[Coordinator],
) -> None:
    a, b = coordinators
    seen = []
    for who in (a, a, b, a, a, b, b):
        with who.vehicle("vexin-01") as fresh:
            seen.append(fresh)
    # First time: nothing remembered by anyone.
    assert seen == [False, True, False, False, True, False, True]


def test_one_ingest_leads_and_the_next_takes_over_when_it_is_gone(
    coordinators: list[Coordinator],
) -> None:
    a, b = coordinators
    assert a.try_lead() and a.try_lead()
    assert not b.try_lead()
    assert b.alive(a.holder) and a.alive(b.holder)
    assert a.still_present()
    a.stop()  # its session ends, as when the process dies
    assert not b.alive(a.holder)
    assert b.try_lead()
    assert not a.still_present()


def test_several_ingests_need_postgresql() -> None:
    engine = sa.create_engine("sqlite://")
    with pytest.raises(ValueError, match="PostgreSQL"):
        Coordinator(engine, shared=True)


def test_what_a_dead_ingest_stored_but_did_not_derive_another_derives(
    shared_store: Store, coordinators: list[Coordinator]
) -> None:
    a, b = coordinators
    dead = Derivation(shared_store, a, observers=[])
    batches = [gps(1, T0), gps(2, T0 + timedelta(minutes=1)), gps(1, T0, vehicle="caux-01")]
    # Stored with its backlog row, then the ingest dies before deriving.
    shared_store.save_batches([(x, T0) for x in batches], backlog=dead.entry())
    recorder = Recorder()
    forgotten: list[str] = []
    survivor = Derivation(shared_store, b, observers=[recorder], forget=[forgotten.append])
    assert survivor.recover() == 0, "derived what a live ingest is still deriving"
    assert len(backlog(shared_store.engine)) == 1
    a.stop()
    assert survivor.recover() == 1
    assert backlog(shared_store.engine) == []
    # Each vehicle's stored samples of the group, as the observers take them; what the
    # survivor remembered of those vehicles was dropped first.
    vehicles = sorted({x.vehicle for call in recorder.calls for x in call})
    assert vehicles == ["caux-01", "vexin-01"]
    assert sorted(forgotten) == ["caux-01", "vexin-01"]
    expected = sorted(s.t for x in batches for s in x.samples)
    assert recorder.fix_times() == expected
    assert survivor.recover() == 0


def test_a_group_an_observer_failed_on_is_derived_again_from_the_stored_samples(
    store: Store,
) -> None:
    recorder = Recorder(failures=1)
    forgotten: list[str] = []
    derivation = Derivation(
        store, Coordinator(store.engine), observers=[recorder], forget=[forgotten.append]
    )
    ingestor = Ingestor(store, derivation=derivation)
    batch = gps(1, T0)
    outcome = ingestor.handle(topic_for(batch.vehicle, "gps"), encode(batch), T0)
    assert outcome.status == "stored"
    assert recorder.calls == [] and forgotten == ["vexin-01"]
    assert len(backlog(store.engine)) == 1
    derivation.housekeep(now=1e9)
    assert recorder.fix_times() == [s.t for s in batch.samples]
    assert backlog(store.engine) == []
    # A group derived at once leaves its row until the next group or the next pass.
    second = gps(2, T0 + timedelta(minutes=1))
    ingestor.handle(topic_for(second.vehicle, "gps"), encode(second), T0)
    assert len(backlog(store.engine)) == 1
    derivation.housekeep(now=2e9)
    assert backlog(store.engine) == []
    assert len(recorder.calls) == 2


def test_a_clean_stop_leaves_no_backlog_and_a_restart_derives_what_a_crash_left(
    store: Store,
) -> None:
    first = Derivation(store, Coordinator(store.engine), observers=[Recorder()])
    ingestor = Ingestor(store, derivation=first)
    batch = gps(1, T0)
    ingestor.handle(topic_for(batch.vehicle, "gps"), encode(batch), T0)
    first.close()
    assert backlog(store.engine) == []
    # Stored, then the process died before deriving: the next one (a new id) derives it.
    crashed = Derivation(store, Coordinator(store.engine), observers=[])
    store.save_batches([(gps(2, T0 + timedelta(minutes=5)), T0)], backlog=crashed.entry())
    recorder = Recorder()
    Derivation(store, Coordinator(store.engine), observers=[recorder]).recover()
    assert recorder.fix_times() == [s.t for s in gps(2, T0 + timedelta(minutes=5)).samples]
    assert backlog(store.engine) == []


def energy(seq: int, t: datetime, soc: float) -> EnergyBatch:
    return EnergyBatch(
        vehicle="vexin-01", seq=seq, samples=[EnergySample(t=t, soc_pct=soc, source="bmv")]
    )


CONFIRM_S = 0.4


def confirming(store: Store, now: datetime) -> AlertEvaluator:
    """Alerts at 20 % (cleared at 25 %), missing fixes after 10 min, confirmed after
    ``CONFIRM_S``; never offline."""
    thresholds = HealthThresholds(
        timedelta(days=365),
        timedelta(minutes=10),
        20,
        25,
        confirm_after=timedelta(seconds=CONFIRM_S),
    )
    return AlertEvaluator(store, thresholds, ManualClock(now))


def test_a_low_battery_is_raised_once_confirmed_from_when_its_readings_went_low(
    store: Store,
) -> None:
    evaluator = confirming(store, T0 + timedelta(minutes=30))
    # The newest reading is stored first, as when another ingest still has the older.
    store.save_batch(energy(3, T0 + timedelta(minutes=20), 12.0), T0)
    assert evaluator.evaluate() == []
    store.save_batch(energy(1, T0, 50.0), T0)
    store.save_batch(energy(2, T0 + timedelta(minutes=10), 15.0), T0)
    time.sleep(CONFIRM_S)
    (raised,) = evaluator.evaluate()
    assert raised[0] == "raised"
    with store.engine.connect() as conn:
        since = conn.execute(sa.select(alerts.c.since)).scalar_one()
    assert since == T0 + timedelta(minutes=10)


def test_a_missing_fix_withdrawn_by_late_fixes_is_never_raised(store: Store) -> None:
    evaluator = confirming(store, T0 + timedelta(hours=1))
    store.save_batch(gps(1, T0), T0)
    # The battery's readings arrive 30 minutes ahead of the fixes.
    store.save_batch(energy(1, T0 + timedelta(minutes=30), 80.0), T0)
    assert evaluator.evaluate() == []
    store.save_batch(gps(2, T0 + timedelta(minutes=29)), T0)
    time.sleep(CONFIRM_S)
    assert evaluator.evaluate() == []
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alerts")).scalar_one() == 0
