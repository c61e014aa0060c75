"""The punctuality observer on a real store (SQLite and PostgreSQL), fed by the ingest."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from ingest.itinerary import Itinerary
from ingest.pipeline import Ingestor
from ingest.punctuality.config import PunctualitySettings
from ingest.punctuality.detector import StopArrival, StopEvent
from ingest.punctuality.storage import PunctualityStore
from ingest.punctuality.tracker import PunctualityTracker
from ingest.store import Store
from ingest.validation import Limits
from protocol import GpsBatch, GpsSample, encode, topic_for
from tests.ingest.punctuality.days import Call, batches_of, simulated_day

MONDAY = date(2026, 11, 16)
RECEIVED = datetime(2026, 11, 16, 18, 0, tzinfo=UTC)


def utc(hour: int, minute: int, day: date = MONDAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def vexin_monday(itinerary: Itinerary, day: date = MONDAY) -> list[GpsBatch]:
    """Vesly 3 min late (09:03 local), a lunch stop at Bézu, Hacqueville 12 min late."""
    samples = simulated_day(
        itinerary,
        "vexin-01",
        [
            Call("vesly", utc(8, 3, day), utc(11, 2, day)),
            Call("bezu-saint-eloi", utc(11, 30, day), utc(12, 0, day)),
            Call("hacqueville", utc(13, 12, day), utc(16, 0, day)),
        ],
        step_s=10,
    )
    return batches_of("vexin-01", samples, 500)


def ingest(store: Store, tracker: PunctualityTracker, batches: list[GpsBatch]) -> Ingestor:
    ingestor = Ingestor(store, Limits(max_age=timedelta(days=3650)), observers=[tracker])
    for b in batches:
        ingestor.handle(topic_for(b.vehicle, "gps"), encode(b), RECEIVED)
    return ingestor


def describe(events: list[StopEvent]) -> list[tuple[str, str, datetime]]:
    return [("arrival" if isinstance(e, StopArrival) else "departure", e.stop, e.t) for e in events]


def test_a_day_in_order_gives_detections_and_unscheduled_stops(
    store: Store, itinerary: Itinerary
) -> None:
    tracker = PunctualityTracker(store, itinerary)
    tracker.start(MONDAY, past_days=1)
    ingest(store, tracker, vexin_monday(itinerary))

    db = PunctualityStore(store)
    rows = {r.id: r for r in db.visits_between(MONDAY, MONDAY)}
    assert set(rows) == {
        "vexin-01:2026-11-16:vesly",
        "vexin-01:2026-11-16:hacqueville",
        "caux-01:2026-11-16:terres-de-caux",
        "caux-01:2026-11-16:allouville-bellefosse",
    }
    vesly = rows["vexin-01:2026-11-16:vesly"].facts
    assert abs(vesly.detected_arrival - utc(8, 3)) <= timedelta(seconds=5)  # type: ignore[operator]
    assert vesly.detected_departure is not None and vesly.detected_departure > utc(11, 2)
    hacqueville = rows["vexin-01:2026-11-16:hacqueville"].facts
    assert abs(hacqueville.detected_arrival - utc(13, 12)) <= timedelta(seconds=5)  # type: ignore[operator]
    assert rows["caux-01:2026-11-16:terres-de-caux"].facts.detected_arrival is None
    # Thresholds travel with each visit so the API classes it without the ingest's settings.
    assert vesly.on_time_from == timedelta(minutes=-5)
    assert vesly.closes_at == vesly.scheduled_departure

    unscheduled = [(u.stop, u.arrival) for u in db.unscheduled(MONDAY, MONDAY)]
    assert ("bezu-saint-eloi", utc(11, 30)) in [(s, a.replace(second=0)) for s, a in unscheduled]
    assert [s for s, _ in unscheduled] == ["gisors", "bezu-saint-eloi", "gisors"]
    arrival = db.evidence("vexin-01", "arrival", vesly.detected_arrival)  # type: ignore[arg-type]
    assert arrival is not None and arrival.fixes >= 12 and arrival.max_distance_m < 50


def test_late_and_shuffled_batches_give_the_same_detections(
    store: Store, itinerary: Itinerary
) -> None:
    batches = vexin_monday(itinerary)
    reference = detections_of(itinerary, batches, store, shuffle=False)
    # The midday batches come last (an outbox catching up): re-derived, same result.
    assert detections_of(itinerary, batches, store, shuffle=True) == reference
    assert len(reference) == 9  # depot, Vesly, Bézu, Hacqueville, back at the depot


def detections_of(
    itinerary: Itinerary, batches: list[GpsBatch], store: Store, shuffle: bool
) -> list[tuple[str, str, datetime]]:
    db = PunctualityStore(store)
    with store.engine.begin() as conn:
        for table in ("stop_events", "unscheduled_stops", "gps_samples", "batches"):
            conn.exec_driver_sql(f"DELETE FROM {table}")
    tracker = PunctualityTracker(store, itinerary)
    tracker.start(MONDAY, past_days=1)
    order = list(batches)
    if shuffle:
        order = order[:2] + order[4:] + order[2:4]
    ingest(store, tracker, order)
    return describe(db.events("vexin-01", MONDAY))


def test_a_restarted_ingest_rebuilds_its_detector_from_stored_fixes(
    store: Store, itinerary: Itinerary
) -> None:
    batches = vexin_monday(itinerary)
    half = len(batches) // 2
    first = PunctualityTracker(store, itinerary)
    first.start(MONDAY, past_days=1)
    ingest(store, first, batches[:half])
    # A new process: fresh tracker, same database; the rest of the day arrives.
    second = PunctualityTracker(store, itinerary)
    second.start(MONDAY, past_days=1)
    ingest(store, second, batches[half:])
    rows = {r.id: r.facts for r in PunctualityStore(store).visits_between(MONDAY, MONDAY)}
    assert rows["vexin-01:2026-11-16:hacqueville"].detected_arrival is not None
    events = describe(PunctualityStore(store).events("vexin-01", MONDAY))
    assert [k for k, _, _ in events] == ["arrival", "departure"] * 4 + ["arrival"]


def test_etas_use_the_speed_seen_on_that_leg_before(store: Store, itinerary: Itinerary) -> None:
    settings = PunctualitySettings(default_speed_kmh=10.0, eta_every_s=0)
    tracker = PunctualityTracker(store, itinerary, settings)
    tracker.start(MONDAY, past_days=1)
    # Last week the bus drove Vesly → Hacqueville; this Monday it has just left Vesly.
    last_week = MONDAY - timedelta(days=7)

    def direct(day: date) -> list[GpsSample]:
        calls = [
            Call("vesly", utc(8, 3, day), utc(11, 2, day)),
            Call("hacqueville", utc(13, 0, day), utc(16, 0, day)),
        ]
        return simulated_day(itinerary, "vexin-01", calls)

    ingest(store, tracker, batches_of("vexin-01", direct(last_week), 400))
    on_the_road = [s for s in direct(MONDAY) if s.t <= utc(12, 55)]
    ingest(
        store,
        tracker,
        [
            b.model_copy(update={"seq": b.seq + 100})
            for b in batches_of("vexin-01", on_the_road, 400)
        ],
    )

    rows = {r.id: r for r in PunctualityStore(store).visits_between(MONDAY, MONDAY)}
    hacqueville = rows["vexin-01:2026-11-16:hacqueville"]
    assert hacqueville.eta_from == on_the_road[-1].t
    assert hacqueville.eta is not None
    # At the 10 km/h default the remaining few km would take half an hour; at last week's
    # speed on this leg, the bus is there at about the time it was last week.
    assert abs(hacqueville.eta - utc(13, 0)) < timedelta(minutes=3)
    assert rows["vexin-01:2026-11-16:vesly"].eta is None  # done


def test_a_changed_timetable_keeps_what_coordinators_touched(
    store: Store, itinerary: Itinerary
) -> None:
    from ingest.punctuality.ledger import CoordinatorChange

    tracker = PunctualityTracker(store, itinerary)
    tracker.start(MONDAY, past_days=1)
    db = PunctualityStore(store)
    db.record_change(
        "vexin-01:2026-11-16:vesly",
        lambda row, so_far: CoordinatorChange("cancel", "camille", RECEIVED, "snow"),
    )
    fewer = itinerary.model_copy(
        update={"slots": [s for s in itinerary.slots if s.vehicle != "vexin-01"]}
    )
    PunctualityTracker(store, fewer).start(MONDAY, past_days=1)
    ids = {r.id: r for r in db.visits_between(MONDAY, MONDAY)}
    assert "vexin-01:2026-11-16:hacqueville" not in ids
    assert ids["vexin-01:2026-11-16:vesly"].facts.timetable_cancelled_reason == (
        "removed from the timetable"
    )


@pytest.mark.parametrize("past_days", [0, 3])
def test_start_materialises_the_horizon(store: Store, itinerary: Itinerary, past_days: int) -> None:
    PunctualityTracker(store, itinerary, PunctualitySettings(horizon_days=7)).start(
        MONDAY, past_days=past_days
    )
    days = {
        r.day for r in PunctualityStore(store).visits_between(date(2026, 1, 1), date(2027, 1, 1))
    }
    assert min(days) == MONDAY - timedelta(days=past_days)  # a Monday, or Friday the 13th
    assert max(days) == MONDAY + timedelta(days=7)
    assert MONDAY + timedelta(days=5) not in days  # Saturday: no slots
