"""Stays that cross midnight, and stays that contradict each other across days, through
the tracker on a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from prometheus_client import generate_latest

from ingest.itinerary import Itinerary
from ingest.local_days import LocalDay
from ingest.metrics import IngestMetrics
from ingest.pipeline import Ingestor
from ingest.punctuality.detector import Evidence, StopArrival
from ingest.punctuality.storage import PunctualityStore
from ingest.punctuality.tracker import PunctualityTracker
from ingest.store import Store
from ingest.validation import Limits
from protocol import GpsBatch, encode, topic_for
from protocol.models import Batch
from tests.ingest.punctuality.days import batches_of
from tests.ingest.punctuality.test_tracker import MONDAY, utc, vexin_monday

TUESDAY = MONDAY + timedelta(days=1)


def ingest(
    store: Store, tracker: PunctualityTracker, batches: list[GpsBatch], seq_from: int = 0
) -> None:
    """Each batch as a message of its own, received a minute after its newest fix; the
    tracker must not fail on any (the ingest would log it and go on)."""
    failures: list[str] = []

    def observer(batches: Sequence[Batch]) -> None:
        try:
            tracker(batches)
        except Exception as exc:
            failures.append(repr(exc))

    ingestor = Ingestor(store, Limits(max_age=timedelta(days=3650)), observers=[observer])
    for batch in batches:
        b = batch.model_copy(update={"seq": batch.seq + seq_from})
        received = max(s.t for s in b.samples) + timedelta(minutes=1)
        outcome = ingestor.handle(topic_for(b.vehicle, "gps"), encode(b), received)
        assert outcome.status == "stored", outcome.reason
    assert failures == []


def test_a_night_at_the_depot_is_one_stay_listed_on_both_days(
    store: Store, itinerary: Itinerary
) -> None:
    # The receiver is off overnight: Monday's fixes end at the depot, Tuesday's begin there.
    monday, tuesday = vexin_monday(itinerary, MONDAY), vexin_monday(itinerary, TUESDAY)
    tracker = PunctualityTracker(store, itinerary)
    tracker.start(MONDAY, past_days=1)
    ingest(store, tracker, monday)
    # The ingest restarts overnight; Tuesday's batches come with new sequence numbers.
    tracker = PunctualityTracker(store, itinerary)
    tracker.start(TUESDAY, past_days=1)
    ingest(store, tracker, tuesday, seq_from=100)

    db = PunctualityStore(store)
    evening = db.unscheduled(MONDAY, MONDAY, "vexin-01")[-1]
    first_of_tuesday = next(e for e in db.events("vexin-01", TUESDAY) if e.stop == "gisors")
    assert evening.stop == "gisors" and evening.arrival > utc(14, 0)
    # Closed by Tuesday's departure from the depot, which is on Tuesday's list too.
    assert evening.departure == first_of_tuesday.t
    assert not isinstance(first_of_tuesday, StopArrival)
    tuesday_start = LocalDay.of(TUESDAY, itinerary.zone).start
    morning = db.unscheduled(TUESDAY, TUESDAY, "vexin-01")[0]
    assert (morning.stop, morning.arrival, morning.departure) == (
        "gisors",
        evening.arrival,
        evening.departure,
    )
    assert morning.arrival < tuesday_start
    # A re-derivation of Tuesday (late data) sees the same stay, not a new arrival.
    tracker._rederive("vexin-01", TUESDAY)
    assert not isinstance(db.events("vexin-01", TUESDAY)[0], StopArrival)


def test_an_open_stay_from_another_run_is_reconciled_and_counted(
    store: Store, itinerary: Itinerary
) -> None:
    metrics = IngestMetrics()
    tracker = PunctualityTracker(store, itinerary, on_reconciled=metrics.count_reconciled)
    tracker.start(MONDAY, past_days=1)
    ingest(store, tracker, vexin_monday(itinerary, MONDAY))
    db = PunctualityStore(store)
    # A replayed drive whose data ended inside Vesly's zone left this stay open on Monday
    # evening; the detector's own run for Monday never saw it.
    replayed = utc(19, 0)
    evidence = Evidence(150, 20.0, replayed, replayed + timedelta(minutes=2))
    db.add_events([(StopArrival("vexin-01", "vesly", replayed, evidence), MONDAY)])

    tuesday = vexin_monday(itinerary, TUESDAY)
    samples = [s for b in tuesday for s in b.samples if s.t >= utc(8, 0, TUESDAY)]
    # Live data from Tuesday at Vesly on, batch after batch: none may fail.
    batches = [
        b.model_copy(update={"seq": b.seq + 500}) for b in batches_of("vexin-01", samples, 200)
    ]
    ingest(store, tracker, batches)

    assert tracker.reconciled >= 1
    exposed = generate_latest(metrics.registry).decode()
    assert f"medicobus_punctuality_stays_reconciled_total {float(tracker.reconciled)}" in exposed
    # Counted once, not once per batch.
    assert tracker.reconciled <= 2
    # Tuesday's stays are detected as if nothing had happened.
    arrivals = [e for e in db.events("vexin-01", TUESDAY) if isinstance(e, StopArrival)]
    assert any(
        e.stop == "hacqueville" and abs(e.t - utc(13, 12, TUESDAY)) <= timedelta(seconds=10)
        for e in arrivals
    )
