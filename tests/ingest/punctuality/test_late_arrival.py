"""The predicted late arrival alert: the rule on hand-made visits, then raised and cleared by
the ingest's alert evaluator from the ETAs it keeps (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from ingest.alerts import storage as alert_storage
from ingest.alerts.records import AlertRecord
from ingest.domain import IngestDomain
from ingest.geo import haversine_m
from ingest.itinerary import Itinerary
from ingest.pipeline import Ingestor
from ingest.punctuality.config import PunctualitySettings
from ingest.punctuality.late_arrival import LateArrivals, alert_subject, late_arrival
from ingest.punctuality.ledger import CoordinatorChange, VisitFacts, VisitState, visit_state
from ingest.punctuality.storage import PunctualityStore
from ingest.punctuality.tracker import PunctualityTracker
from ingest.punctuality.visit_rows import VisitRow
from ingest.settings import DomainSettings
from ingest.store import Store
from ingest.validation import Limits
from protocol import GpsBatch, GpsSample, encode, topic_for
from protocol.clock import ManualClock
from tests.ingest.punctuality.days import Call, simulated_day
from tests.ingest.punctuality.test_tracker import MONDAY, utc

MIN = timedelta(minutes=1)
HALF_MIN = timedelta(seconds=30)
HACQUEVILLE = "vexin-01:2026-11-16:hacqueville"  # scheduled 13:00 UTC (14:00 in Paris)


def row(
    visit_id: str,
    arrive: datetime,
    *,
    eta: datetime | None = None,
    eta_from: datetime | None = None,
    detected: datetime | None = None,
) -> VisitRow:
    facts = VisitFacts(
        visit_id=visit_id,
        scheduled_arrival=arrive,
        scheduled_departure=arrive + timedelta(hours=3),
        closes_at=arrive + timedelta(hours=3),
        on_time_from=-5 * MIN,
        on_time_until=5 * MIN,
        detected_arrival=detected,
    )
    return VisitRow(
        id=visit_id,
        vehicle="vexin-01",
        operator="doct-eure",
        stop=visit_id.rsplit(":", 1)[-1],
        stop_name="Hacqueville",
        day=MONDAY,
        origin="weekly",
        changed=False,
        facts=facts,
        eta=eta,
        eta_from=eta_from,
        eta_distance_m=None if eta is None else 9000.0,
    )


def states(
    rows: Sequence[VisitRow],
    now: datetime,
    changes: dict[str, list[CoordinatorChange]] | None = None,
) -> list[tuple[VisitRow, VisitState]]:
    return [(r, visit_state(r.facts, (changes or {}).get(r.id, []), now)) for r in rows]


def test_the_next_visits_eta_past_the_on_time_band_makes_the_condition() -> None:
    at = utc(12, 40)
    on_time = row(HACQUEVILLE, utc(13, 0), eta=utc(13, 5), eta_from=at)
    assert late_arrival("vexin-01", states([on_time], at), at) is None  # the band's end counts

    late = row(HACQUEVILLE, utc(13, 0), eta=utc(13, 6), eta_from=at)
    found = late_arrival("vexin-01", states([late], at), at)
    assert found is not None
    assert (found.kind, found.subject, found.since) == ("late_arrival", HACQUEVILLE, at)
    assert found.message == (
        "vexin-01: expected at Hacqueville at 2026-11-16 13:06 UTC, 6 min after its "
        "scheduled arrival (2026-11-16 13:00 UTC)"
    )
    assert found.detail["expected_delay_min"] == 6.0
    assert found.detail["basis"] == "eta"


def test_without_an_eta_the_clock_says_when_the_bus_is_late() -> None:
    visit = row(HACQUEVILLE, utc(13, 0))
    assert late_arrival("vexin-01", states([visit], utc(13, 5)), utc(13, 5)) is None
    found = late_arrival("vexin-01", states([visit], utc(13, 20)), utc(13, 20))
    assert found is not None
    assert found.since == utc(13, 5)  # when it became certain
    assert found.detail["basis"] == "not arrived"
    assert "13:20 UTC or later, 20 min after" in found.message
    # An ETA older than the clock does not make the bus earlier than now.
    stale = row(HACQUEVILLE, utc(13, 0), eta=utc(13, 10), eta_from=utc(12, 30))
    found = late_arrival("vexin-01", states([stale], utc(13, 30)), utc(13, 30))
    assert found is not None and found.detail["expected_arrival"] == utc(13, 30).isoformat()


def test_only_the_earliest_pending_visit_counts() -> None:
    now = utc(13, 30)
    arrived = row("vexin-01:2026-11-16:vesly", utc(8, 0), detected=utc(8, 3))
    cancelled = row("vexin-01:2026-11-16:gisors", utc(12, 0))
    later = row("vexin-01:2026-11-16:morgny", utc(16, 0), eta=utc(15, 58), eta_from=now)
    cancel = {cancelled.id: [CoordinatorChange("cancel", "c", now, "strike")]}
    assert late_arrival("vexin-01", states([arrived, cancelled, later], now, cancel), now) is None
    # The bus arrived at Hacqueville (corrected by a coordinator): it no longer counts.
    hacqueville = row(HACQUEVILLE, utc(13, 0))
    corrected = {HACQUEVILLE: [CoordinatorChange("correct", "c", now, "log", utc(13, 1))]}
    assert late_arrival("vexin-01", states([hacqueville, later], now, corrected), now) is None
    found = late_arrival("vexin-01", states([later, hacqueville], now), now)
    assert found is not None and found.subject == HACQUEVILLE
    # Its window closed: missed, not late; the next visit is on time.
    evening = utc(16, 30)
    assert late_arrival("vexin-01", states([hacqueville], evening), evening) is None


def test_long_visit_ids_fit_the_alerts_subject() -> None:
    assert alert_subject(HACQUEVILLE) == HACQUEVILLE
    long_one = "v" * 64 + ":2026-11-16:" + "s" * 64
    shortened = alert_subject(long_one)
    assert len(shortened) == 100 and shortened.startswith("v" * 64)
    assert shortened != alert_subject(long_one + "#2")


# --- raised and cleared by the ingest ------------------------------------------------------


@dataclass
class Ingest:
    """The punctuality tracker and the domain (with the late-arrival source) on one store,
    fed a day's fixes piece by piece, on a hand-set clock."""

    store: Store
    tracker: PunctualityTracker
    domain: IngestDomain
    clock: ManualClock
    seq: int = 0

    @classmethod
    def of(cls, store: Store, itinerary: Itinerary, settings: PunctualitySettings) -> Ingest:
        tracker = PunctualityTracker(store, itinerary, settings)
        tracker.start(MONDAY, past_days=1)
        clock = ManualClock(utc(6, 0))
        domain = IngestDomain(
            store, itinerary, DomainSettings(), clock, condition_sources=[LateArrivals(store)]
        )
        return cls(store, tracker, domain, clock)

    def drive(self, samples: Sequence[GpsSample]) -> None:
        ingestor = Ingestor(
            self.store,
            Limits(max_age=timedelta(days=3650)),
            observers=[self.tracker, *self.domain.observers],
        )
        for i in range(0, len(samples), 200):
            batch = GpsBatch(vehicle="vexin-01", seq=self.seq, samples=list(samples[i : i + 200]))
            self.seq += 1
            outcome = ingestor.handle(topic_for("vexin-01", "gps"), encode(batch), samples[-1].t)
            assert outcome.status == "stored"

    def at(self, t: datetime) -> list[AlertRecord]:
        """Evaluate the alerts at ``t``; the late-arrival alerts so far, oldest first."""
        self.clock.set(t)
        self.domain.alerts.evaluate(["vexin-01"])
        return self.late_arrivals()

    def tick(self, t: datetime) -> list[AlertRecord]:
        self.clock.set(t)
        self.domain.alerts.tick()
        return self.late_arrivals()

    def late_arrivals(self, vehicle: str = "vexin-01") -> list[AlertRecord]:
        found = alert_storage.list_alerts(
            self.store.engine, vehicle_ids=[vehicle], kinds=["late_arrival"]
        )
        return sorted(found, key=lambda a: a.id)

    def eta(self, visit: str) -> datetime | None:
        found = PunctualityStore(self.store).visit(visit)
        assert found is not None
        return found.eta


def until(samples: Sequence[GpsSample], start: datetime | None, end: datetime) -> list[GpsSample]:
    return [s for s in samples if (start is None or s.t > start) and s.t <= end]


def test_raised_when_the_bus_is_not_there_in_time_cleared_when_it_arrives(
    store: Store, itinerary: Itinerary
) -> None:
    ingest = Ingest.of(store, itinerary, PunctualitySettings(eta_every_s=0))
    calls = [Call("vesly", utc(8, 3), utc(11, 0)), Call("hacqueville", utc(13, 12), utc(16, 0))]
    day = simulated_day(itinerary, "vexin-01", calls, step_s=10)

    # Parked at Vesly at 12:50: 9 km of road at 45 km/h, there at about 13:02. On time.
    ingest.drive(until(day, None, utc(12, 50)))
    eta = ingest.eta(HACQUEVILLE)
    assert eta is not None and utc(12, 50) < eta <= utc(13, 5)
    assert ingest.at(utc(12, 50) + HALF_MIN) == []

    # The bus goes silent; by 13:05 it is not there, so it will be late.
    (alert,) = ingest.tick(utc(13, 6))
    assert alert.active and alert.subject == HACQUEVILLE and alert.vehicle == "vexin-01"
    assert alert.since == utc(13, 5)
    assert alert.severity == "warning"
    assert alert.detail["basis"] == "not arrived"
    assert "expected at Hacqueville" in alert.message
    assert ingest.tick(utc(13, 8)) == [alert]  # raised once
    # The clock's tick looks at the whole fleet: caux-01 never left its depot.
    (caux,) = ingest.late_arrivals("caux-01")
    assert caux.subject == "caux-01:2026-11-16:allouville-bellefosse" and caux.active

    # Its fixes come in: it arrived at 13:12.
    ingest.drive(until(day, utc(12, 50), utc(13, 20)))
    (cleared,) = ingest.at(utc(13, 20) + HALF_MIN)
    assert cleared.id == alert.id and not cleared.active
    assert cleared.cleared_at == utc(13, 20) + HALF_MIN


def test_raised_on_a_late_eta_cleared_when_the_eta_is_back_on_time(
    store: Store, itinerary: Itinerary
) -> None:
    # A slow default speed: from Vesly the ETA is late; close to Hacqueville it is not.
    ingest = Ingest.of(store, itinerary, PunctualitySettings(eta_every_s=0, default_speed_kmh=20))
    calls = [Call("vesly", utc(8, 3), utc(11, 0)), Call("hacqueville", utc(13, 2), utc(16, 0))]
    day = simulated_day(itinerary, "vexin-01", calls, step_s=10)

    ingest.drive(until(day, None, utc(12, 40)))
    eta = ingest.eta(HACQUEVILLE)
    assert eta is not None and eta > utc(13, 5)
    (alert,) = ingest.at(utc(12, 40) + HALF_MIN)
    assert alert.active and alert.detail["basis"] == "eta"
    assert alert.since == utc(12, 40)  # the position that showed it
    assert alert.detail["expected_arrival"] == eta.isoformat()

    hacqueville = itinerary.stop("hacqueville")
    near = next(
        s
        for s in day
        if s.t > utc(12, 40) and haversine_m(s.lat, s.lon, hacqueville.lat, hacqueville.lon) < 600
    )
    ingest.drive(until(day, utc(12, 40), near.t))
    eta = ingest.eta(HACQUEVILLE)
    assert eta is not None and eta <= utc(13, 5)
    (cleared,) = ingest.at(near.t + timedelta(seconds=5))
    assert cleared.id == alert.id and not cleared.active


def test_a_doubtful_or_unconfirmed_eta_raises_the_condition_before_any_delay() -> None:
    at = utc(11, 0)
    # The ETA itself is on time, but the bus stands off its round: it may not come.
    unsure = replace(
        row(HACQUEVILLE, utc(13, 0), eta=utc(13, 1), eta_from=at),
        eta_state="not_confirmed",
        eta_earliest=utc(12, 55),
    )
    found = late_arrival("vexin-01", states([unsure], at), at)
    assert found is not None
    assert found.detail["basis"] == "not_confirmed"
    assert found.detail["eta_state"] == "not_confirmed"
    assert found.detail["eta_earliest"] == "2026-11-16T12:55:00+00:00"
    assert found.detail["eta_latest"] is None
    assert found.message.startswith("vexin-01: not confirmed (standing off its round")
    assert "13:01 UTC or later" in found.message

    doubtful = replace(unsure, eta=utc(16, 20), eta_state="doubtful")
    found = late_arrival("vexin-01", states([doubtful], at), at)
    assert found is not None
    assert found.detail["basis"] == "doubtful"
    assert "may not come" in found.message

    # Waiting to leave, on time: nothing to say.
    waiting = replace(unsure, eta_state="waiting_to_leave")
    assert late_arrival("vexin-01", states([waiting], at), at) is None
