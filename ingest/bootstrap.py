"""The ingest put together, in one place, for ``medicobus ingest``, ``medicobus demo``
and the tests: the punctuality tracker first (the alerts read the visits it updates), then
the domain's observers (cold chain, footprint, daily records, alerts with late arrivals),
run one vehicle at a time by the derivation step, the subscriber feeding them, and what
runs beside (time-series forwarder, retention).

With ``shared_group`` several ingests share the load on one PostgreSQL database
(:mod:`ingest.store.coordination`): each derives the vehicles of the batches it stores,
under their locks; one of them, the leader, also runs what is done once for the whole
fleet. If the leader loses its database session, another may take the lead: it stops
(``on_lost_lead``, by default the end of the process, for its supervisor to start it
again), as Kubernetes' leader-election clients do, rather than run a second copy.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from firmware_config.agent import BrokerConfig
from ingest.derivation import Derivation
from ingest.domain import IngestDomain
from ingest.itinerary import Itinerary
from ingest.local_days import local_date
from ingest.metrics import IngestMetrics
from ingest.pipeline import Ingestor
from ingest.punctuality.config import PunctualitySettings
from ingest.punctuality.eta import HorizonAccuracy
from ingest.punctuality.figures import StoredVisitFigures
from ingest.punctuality.late_arrival import LateArrivals
from ingest.punctuality.storage import PunctualityStore
from ingest.punctuality.tracker import PunctualityTracker
from ingest.retention import RetentionPruner
from ingest.runtime import settle_heap
from ingest.settings import DomainSettings
from ingest.store import Coordinator, Store
from ingest.stored_batches import stored_seqs
from ingest.subscriber import IngestSubscriber
from ingest.timeseries import InfluxSettings, TimeseriesForwarder
from ingest.validation import Limits
from protocol.clock import Clock, SystemClock

log = logging.getLogger(__name__)

# How often an ingest that does not lead tries to, and the leader checks it still does.
LEAD_EVERY_S = 2.0
SET_UP_LOCK = "set-up"


def _end_process() -> None:
    log.critical("lost the lead of the ingests (database session gone); stopping")
    os._exit(70)


@dataclass(frozen=True)
class IngestOptions:
    """What differs between deployments: the broker, the domain's settings and limits."""

    broker: BrokerConfig
    domain: DomainSettings
    punctuality: PunctualitySettings | None = None
    limits: Limits = field(default_factory=Limits)
    # Days of visits materialised behind today at start (those still accepted).
    past_days: int = 30
    shared_group: str | None = None
    influx: InfluxSettings | None = None
    retention_days: float | None = None


class RunningIngest:
    """The assembled ingest; :meth:`start` and :meth:`stop` run and end all its parts."""

    def __init__(
        self,
        store: Store,
        itinerary: Itinerary,
        options: IngestOptions,
        clock: Clock | None = None,
        metrics: IngestMetrics | None = None,
        *,
        on_lost_lead: Callable[[], None] = _end_process,
    ) -> None:
        """Raises what the settings make impossible (``DomainConfigError``,
        ``FactorFileError``, ``ScheduleError``) before anything starts."""
        self.clock = clock or SystemClock()
        self.store = store
        self.metrics = metrics or IngestMetrics()
        self.coordinator = Coordinator(store.engine, shared=options.shared_group is not None)
        self._on_lost_lead = on_lost_lead
        # Ingests starting together write the same configuration and timetable.
        with self.coordinator.exclusively(SET_UP_LOCK):
            self.domain = IngestDomain(
                store,
                itinerary,
                options.domain,
                self.clock,
                condition_sources=[LateArrivals(store)],
                visit_figures=StoredVisitFigures(store, self.clock),
                coordinator=self.coordinator,
            )
            self.punctuality = PunctualityTracker(
                store, itinerary, options.punctuality, on_reconciled=self.metrics.count_reconciled
            )
            self.punctuality.start(local_date(self.clock.now(), itinerary.zone), options.past_days)
        self.derivation = Derivation(
            store,
            self.coordinator,
            observers=[self.punctuality, *self.domain.observers],
            forget=[self.punctuality.forget],
        )
        self.ingestor = Ingestor(
            store, options.limits, metrics=self.metrics, derivation=self.derivation
        )
        self.subscriber = IngestSubscriber(
            self.ingestor,
            options.broker,
            clock=self.clock,
            shared_group=options.shared_group,
            stored_seqs=stored_seqs(store),
        )
        self.metrics.track_backlog(lambda: self.subscriber.backlog)
        self.metrics.track_eta_accuracy(self._eta_accuracy)
        self.forwarder = (
            TimeseriesForwarder(store, options.influx) if options.influx is not None else None
        )
        if self.forwarder is not None:
            self.metrics.track_timeseries(store.count_pending_points)
        self.pruner = (
            RetentionPruner(store, options.retention_days) if options.retention_days else None
        )
        self.leading: bool = False
        self._stopping = threading.Event()
        self._leadership: threading.Thread | None = None

    def _eta_accuracy(self) -> Sequence[HorizonAccuracy]:
        return PunctualityStore(self.store).recent_accuracy(self.clock.now())

    def start(self) -> None:
        self.coordinator.start()
        leading = self.coordinator.try_lead()
        self.domain.start(leading=False)
        if leading:
            self._lead()
        else:
            self._leadership = threading.Thread(
                target=self._follow_lead, name="ingest-lead", daemon=True
            )
            self._leadership.start()
        # Groups an ingest left undone before this one started.
        self.derivation.housekeep()
        settle_heap()
        self.subscriber.start()

    def _lead(self) -> None:
        """Start what one ingest does for the whole fleet."""
        self.leading = True
        if self.forwarder is not None:
            self.forwarder.start()
        if self.pruner is not None:
            self.pruner.start()
        self.domain.lead()

    def _follow_lead(self) -> None:
        while not self._stopping.wait(LEAD_EVERY_S):
            try:
                if not self.leading:
                    if self.coordinator.try_lead():
                        log.info("this ingest now leads")
                        self._lead()
                elif not self.coordinator.still_present():
                    self._on_lost_lead()
                    return
            except Exception:
                log.exception("could not take the lead; again in %.0f s", LEAD_EVERY_S)

    def stop(self) -> None:
        self.subscriber.stop()
        self._stopping.set()
        if self._leadership is not None:
            self._leadership.join(timeout=10)
        self.domain.stop()
        if self.leading:
            if self.pruner is not None:
                self.pruner.stop()
            if self.forwarder is not None:
                self.forwarder.stop()
        self.leading = False
        self.derivation.close()
        self.coordinator.stop()
