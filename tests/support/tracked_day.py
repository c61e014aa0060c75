"""vexin-01's Monday (2026-11-16) as a running ingest leaves it: the punctuality tracker,
the domain (cold chain, daily records, alerts, the settings the reports need) and every
batch through the real pipeline."""

from __future__ import annotations

from datetime import datetime, timedelta

from ingest.domain import IngestDomain
from ingest.itinerary import Itinerary
from ingest.pipeline import Ingestor
from ingest.punctuality.config import PunctualitySettings
from ingest.punctuality.tracker import PunctualityTracker
from ingest.settings import DomainSettings
from ingest.store import Store
from ingest.validation import Limits
from protocol.clock import ManualClock
from tests.ingest.punctuality.test_tracker import MONDAY, RECEIVED, vexin_monday
from tests.support.domain import feed


def track_vexin_monday(store: Store, itinerary: Itinerary, derived_at: datetime) -> None:
    """Feed the day and derive what the domain derives at ``derived_at``."""
    domain = IngestDomain(store, itinerary, DomainSettings(), ManualClock(derived_at))
    tracker = PunctualityTracker(store, itinerary, PunctualitySettings(horizon_days=14))
    tracker.start(MONDAY, past_days=1)
    ingestor = Ingestor(
        store, Limits(max_age=timedelta(days=3650)), observers=[tracker, *domain.observers]
    )
    feed(ingestor, vexin_monday(itinerary), RECEIVED)
    domain.catch_up()
