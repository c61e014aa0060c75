"""Daily records are rebuilt from stored samples, off the ingest's hot path, and none is
left stale: not by samples arriving during a rebuild, nor by the day ending."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from ingest.coldchain import storage as coldchain_storage
from ingest.daily_records import PendingDays
from ingest.itinerary import Itinerary
from ingest.settings import DomainSettings
from ingest.store import Store
from protocol import FridgeBatch, FridgeSample
from protocol.clock import ManualClock
from tests.support.domain import domain_ingestor, feed

# 2026-01-06 12:00 in Paris.
NOON = datetime(2026, 1, 6, 11, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
DAY = date(2026, 1, 6)


def test_a_day_marked_again_during_its_rebuild_stays_marked(
    store: Store, itinerary: Itinerary
) -> None:
    pending = PendingDays(store, itinerary.zone, ManualClock(NOON))
    pending.mark([("vexin-01", "fridge", DAY)])
    ((vehicle, record, day, version),) = pending.take()
    # New samples for that day arrive while it is being rebuilt.
    pending.mark([("vexin-01", "fridge", DAY), ("vexin-01", "footprint", DAY)])
    pending.done(vehicle, record, day, version)
    versions = {record: v for _, record, _, v in pending.take()}
    assert versions == {"fridge": 2, "footprint": 1}
    pending.done("vexin-01", "fridge", DAY, versions["fridge"])
    assert [r[1] for r in pending.take()] == ["footprint"]


def test_a_day_recorded_while_going_on_is_rebuilt_once_over(
    store: Store, itinerary: Itinerary
) -> None:
    clock = ManualClock(NOON + 10 * MIN)
    domain, ingestor = domain_ingestor(store, itinerary, DomainSettings(), clock)
    # Readings from 11:00 to 12:00 local, then nothing.
    readings = [FridgeSample(t=NOON - 60 * MIN + i * MIN, temp_c=5.0) for i in range(61)]
    feed(ingestor, [FridgeBatch(vehicle="vexin-01", seq=0, samples=readings)], NOON)
    domain.catch_up()
    (today,) = coldchain_storage.days(store.engine, "vexin-01", DAY, DAY)
    # Observed up to its latest reading: the hours after it are not missing yet.
    assert today.complete is False
    assert (today.record.in_range, today.record.no_data) == (60 * MIN, timedelta(hours=11))
    clock.set(datetime(2026, 1, 7, 8, 0, tzinfo=UTC))
    domain.catch_up()
    (over,) = coldchain_storage.days(store.engine, "vexin-01", DAY, DAY)
    # Over: the hours without a reading are no data, the day incomplete.
    assert (over.complete, over.record.status) == (True, "incomplete")
    assert over.record.no_data == timedelta(hours=23)
