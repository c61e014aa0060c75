"""The reports' visit figures read from the stored visits (SQLite, PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from ingest.footprint.avoided import VisitAttendance
from ingest.itinerary import Itinerary
from ingest.punctuality.figures import StoredVisitFigures
from ingest.punctuality.ledger import CoordinatorChange, check_change
from ingest.punctuality.storage import PunctualityStore
from ingest.punctuality.tracker import PunctualityTracker
from ingest.store import Store
from ingest.tables.intake import stops
from ingest.visit_figures import PunctualitySummary, VisitCounts
from protocol.clock import ManualClock
from tests.ingest.punctuality.test_tracker import MONDAY, ingest, utc, vexin_monday

VESLY = "vexin-01:2026-11-16:vesly"
# The Monday in UTC, and a fortnight of visits listed ahead of it.
START = datetime(2026, 11, 15, 23, 0, tzinfo=UTC)
END = START + timedelta(days=14)


def count(store: Store, visit: str, patients: int) -> None:
    change = CoordinatorChange("attendance", "coord", utc(17, 0), patients_seen=patients)
    PunctualityStore(store).record_change(
        visit, lambda r, so_far: check_change(r.facts, so_far, change)
    )


def test_figures_count_the_visits_due_and_the_patients_counted(
    store: Store, itinerary: Itinerary
) -> None:
    tracker = PunctualityTracker(store, itinerary)
    tracker.start(MONDAY, past_days=1)
    ingest(store, tracker, vexin_monday(itinerary))
    count(store, VESLY, 9)

    evening = StoredVisitFigures(store, ManualClock(utc(19, 0)))
    # Hacqueville was held too, but nobody counted its patients: it is left out.
    assert evening.attendance("vexin-01", START, END) == [VisitAttendance(VESLY, "vesly", 9, 11.0)]
    assert evening.counts("vexin-01", START, END) == VisitCounts(scheduled=2, held=2, cancelled=0)
    assert evening.punctuality("vexin-01", START, END) == PunctualitySummary(
        early=0, on_time=1, late=1, missed=0, mean_delay_min=7.5
    )
    # The rest of the fortnight is listed but not due yet.
    assert len(PunctualityStore(store).visits_arriving_between("vexin-01", START, END)) > 10
    assert evening.attendance("caux-01", START, END) == []  # none held: nothing avoided
    # No visit at all in the period: not recorded.
    before = START - timedelta(days=300)
    assert evening.counts("vexin-01", before, START - timedelta(days=2)) is None
    assert evening.attendance("vexin-01", before, START - timedelta(days=2)) is None
    assert evening.punctuality("vexin-01", before, START - timedelta(days=2)) is None

    # The stops' distances come with the fleet file; unknown is not zero.
    with store.engine.begin() as conn:
        conn.execute(stops.update().values(nearest_surgery_km=None))
    assert evening.attendance("vexin-01", START, END) is None
    store.load_fleet(itinerary)
    with store.engine.connect() as conn:
        km = conn.execute(
            sa.select(stops.c.nearest_surgery_km).where(stops.c.id == "hacqueville")
        ).scalar_one()
    assert km == 12.0
    assert evening.attendance("vexin-01", START, END) == [VisitAttendance(VESLY, "vesly", 9, 11.0)]


def test_held_visits_without_any_count_are_not_recorded(store: Store, itinerary: Itinerary) -> None:
    tracker = PunctualityTracker(store, itinerary)
    tracker.start(MONDAY, past_days=1)
    ingest(store, tracker, vexin_monday(itinerary))
    figures = StoredVisitFigures(store, ManualClock(utc(19, 0)))
    assert figures.attendance("vexin-01", START, END) is None
    assert figures.counts("vexin-01", START, END) == VisitCounts(scheduled=2, held=2)
