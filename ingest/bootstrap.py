"""The ingest put together, in one place, for ``medicobus ingest``, ``medicobus demo``
and the tests: the punctuality tracker first (the alerts read the visits it updates), then
the domain's observers (cold chain, footprint, daily records, alerts with late arrivals),
the subscriber feeding them, and what runs beside (time-series forwarder, retention).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from firmware_config.agent import BrokerConfig
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
from ingest.store import Store
from ingest.stored_batches import stored_seqs
from ingest.subscriber import IngestSubscriber
from ingest.timeseries import InfluxSettings, TimeseriesForwarder
from ingest.validation import Limits
from protocol.clock import Clock, SystemClock


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
    ) -> None:
        """Raises what the settings make impossible (``DomainConfigError``,
        ``FactorFileError``, ``ScheduleError``) before anything starts."""
        self.clock = clock or SystemClock()
        self.store = store
        self.metrics = metrics or IngestMetrics()
        self.domain = IngestDomain(
            store,
            itinerary,
            options.domain,
            self.clock,
            condition_sources=[LateArrivals(store)],
            visit_figures=StoredVisitFigures(store, self.clock),
        )
        self.punctuality = PunctualityTracker(
            store, itinerary, options.punctuality, on_reconciled=self.metrics.count_reconciled
        )
        self.punctuality.start(local_date(self.clock.now(), itinerary.zone), options.past_days)
        self.ingestor = Ingestor(
            store,
            options.limits,
            observers=[self.punctuality, *self.domain.observers],
            metrics=self.metrics,
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

    def _eta_accuracy(self) -> Sequence[HorizonAccuracy]:
        return PunctualityStore(self.store).recent_accuracy(self.clock.now())

    def start(self) -> None:
        if self.forwarder is not None:
            self.forwarder.start()
        if self.pruner is not None:
            self.pruner.start()
        self.domain.start()
        settle_heap()
        self.subscriber.start()

    def stop(self) -> None:
        self.subscriber.stop()
        self.domain.stop()
        if self.pruner is not None:
            self.pruner.stop()
        if self.forwarder is not None:
            self.forwarder.stop()
