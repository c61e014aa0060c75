"""ETAs in operation on a real store (SQLite and PostgreSQL): what the tracker publishes,
how often a prediction is recorded, and how its error is settled once the bus arrives."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from ingest.itinerary import Itinerary
from ingest.pipeline import Ingestor
from ingest.punctuality.config import PunctualitySettings
from ingest.punctuality.eta import Prediction
from ingest.punctuality.storage import PunctualityStore
from ingest.punctuality.tracker import PunctualityTracker
from ingest.store import Store
from ingest.tables.punctuality import eta_predictions
from ingest.validation import Limits
from protocol import GpsBatch, encode, topic_for
from tests.ingest.punctuality.days import Call, batches_of, simulated_day

MONDAY = date(2026, 11, 16)
RECEIVED = datetime(2026, 11, 16, 18, 0, tzinfo=UTC)
HACQUEVILLE = "vexin-01:2026-11-16:hacqueville"
VESLY = "vexin-01:2026-11-16:vesly"


def utc(hour: int, minute: int = 0, second: int = 0, day: date = MONDAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)


def ingest(store: Store, tracker: PunctualityTracker, batches: list[GpsBatch]) -> None:
    ingestor = Ingestor(store, Limits(max_age=timedelta(days=3650)), observers=[tracker])
    for b in batches:
        ingestor.handle(topic_for(b.vehicle, "gps"), encode(b), RECEIVED)


def test_published_predictions_are_spaced_and_settled_by_the_arrival(
    store: Store, itinerary: Itinerary
) -> None:
    tracker = PunctualityTracker(store, itinerary)
    tracker.start(MONDAY, past_days=1)
    db = PunctualityStore(store)
    [visit] = [v for v in db.planned_visits("vexin-01", MONDAY) if v.id == HACQUEVILLE]
    base = Prediction(visit, 1, utc(13, 2), utc(12, 58), utc(13, 8), "on_time", "position", 9000.0)
    t0 = utc(11, 30)  # more than half an hour before the predicted arrival
    steps = [
        (t0, base),  # first: kept
        (t0 + timedelta(seconds=30), base),  # same, 30 s later: not
        (t0 + timedelta(seconds=40), replace(base, state="late")),  # state changed: kept
        (t0 + timedelta(seconds=70), replace(base, state="late")),  # unchanged: not
        (t0 + timedelta(seconds=110), replace(base, state="late", expected_arrival=utc(13, 3))),
        (t0 + timedelta(seconds=200), replace(base, state="late", expected_arrival=utc(13, 3))),
        (t0 + timedelta(minutes=7), replace(base, state="late", expected_arrival=utc(13, 3))),
    ]
    for at, p in steps:
        db.save_etas("vexin-01", MONDAY, [p], at)
    published = db.published_predictions(HACQUEVILLE)
    assert [(made - t0).total_seconds() for made, _, _ in published] == [0, 40, 110, 420]
    assert [s for _, _, s in published] == ["on_time", "late", "late", "late"]
    row = {r.id: r for r in db.visits_between(MONDAY, MONDAY)}[HACQUEVILLE]
    assert (row.eta, row.eta_state, row.eta_source) == (utc(13, 3), "late", "position")
    assert (row.eta_earliest, row.eta_latest) == (utc(12, 58), utc(13, 8))
    # A prediction from a position older than the last one published is not recorded.
    db.save_etas("vexin-01", MONDAY, [base], t0 - timedelta(minutes=7))
    assert len(db.published_predictions(HACQUEVILLE)) == 4
    # Within half an hour of the arrival, an unchanged prediction is recorded every minute.
    late = replace(base, state="late", expected_arrival=utc(13, 3))
    for at in (utc(12, 40), utc(12, 40, 30), utc(12, 41, 5)):
        db.save_etas("vexin-01", MONDAY, [late], at)
    assert [m for m, _, _ in db.published_predictions(HACQUEVILLE)][4:] == [
        utc(12, 40),
        utc(12, 41, 5),
    ]

    # The arrival settles every published prediction's error; a re-derived arrival moves it.
    db.settle_predictions({HACQUEVILLE: utc(13, 1)})
    outcomes = db.prediction_outcomes(utc(0), utc(23), ["vexin-01"])
    assert sorted((o.predicted_arrival - o.arrival).total_seconds() for o in outcomes) == [
        60,
        60,
        120,
        120,
        120,
        120,
    ]
    assert db.prediction_outcomes(utc(0), utc(23), ["caux-01"]) == []
    db.settle_predictions({HACQUEVILLE: utc(13, 3)})
    with store.engine.connect() as conn:
        errors = sorted(r.error_s for r in conn.execute(eta_predictions.select()))
    assert errors == [-60.0, -60.0, 0.0, 0.0, 0.0, 0.0]
    by_day = db.prediction_outcomes_of_days(MONDAY, MONDAY)
    assert {op for op, _ in by_day} == {"doct-eure"}
    assert len(by_day) == 6
    # A withdrawn arrival takes the errors with it.
    db.settle_predictions({HACQUEVILLE: None})
    assert db.prediction_outcomes(utc(0), utc(23)) == []
    accuracy = db.recent_accuracy(utc(23))
    assert sum(a.predictions for a in accuracy) == 0


@pytest.mark.parametrize("parked_until", [utc(11, 2), utc(12, 20)])
def test_the_tracker_keeps_a_parked_bus_at_its_stop_and_settles_its_etas(
    store: Store, itinerary: Itinerary, parked_until: datetime
) -> None:
    """The bus holds Vesly (scheduled to 11:00 UTC) and then, on one day, stays until
    12:20 for lunch; the Hacqueville ETA never says it leaves before that."""
    tracker = PunctualityTracker(store, itinerary, PunctualitySettings(eta_every_s=0))
    tracker.start(MONDAY, past_days=1)
    calls = [
        Call("vesly", utc(8, 3), parked_until),
        Call("hacqueville", utc(13, 0), utc(16, 0)),
    ]
    samples = simulated_day(itinerary, "vexin-01", calls, step_s=10)
    db = PunctualityStore(store)
    seen: list[tuple[datetime, datetime | None, str | None]] = []
    # Ten-minute batches, then a batch a minute for the last half hour before Hacqueville.
    coarse = batches_of("vexin-01", [s for s in samples if s.t < utc(12, 30)], 60)
    fine = batches_of("vexin-01", [s for s in samples if utc(12, 30) <= s.t < utc(13, 30)], 6)
    batches = coarse + [b.model_copy(update={"seq": b.seq + len(coarse)}) for b in fine]
    for b in batches:
        ingest(store, tracker, [b])
        row = {r.id: r for r in db.visits_between(MONDAY, MONDAY)}[HACQUEVILLE]
        if row.facts.detected_arrival is None:
            seen.append((b.samples[-1].t, row.eta, row.eta_state))
    at_vesly = [(t, eta, s) for t, eta, s in seen if utc(9) <= t < parked_until]
    assert at_vesly
    for t, eta, state in at_vesly:
        assert eta is not None and eta >= min(utc(13), parked_until), (t, eta)
        assert state == "waiting_to_leave", (t, state)
    published = db.published_predictions(HACQUEVILLE)
    assert published
    # Never two within a minute unless the state changed.
    for (a, _, sa), (b, _, sb) in itertools.pairwise(published):
        assert (b - a) >= timedelta(minutes=1) or sa != sb
    everything = db.prediction_outcomes(utc(0), utc(23))
    assert len(everything) == len(published) + len(db.published_predictions(VESLY))
    outcomes = [o for o in everything if o.scheduled_arrival == utc(13)]
    assert len(outcomes) == len(published)
    arrival = outcomes[0].arrival
    assert abs(arrival - utc(13)) < timedelta(minutes=2)
    # Predictions made within five minutes of the arrival were within two minutes of it.
    close = [o for o in outcomes if timedelta(0) < arrival - o.made_at <= timedelta(minutes=5)]
    assert close
    assert all(abs(o.predicted_arrival - arrival) < timedelta(minutes=2) for o in close)
