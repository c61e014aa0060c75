"""What the ingest does, in Prometheus's exposition format (``/metrics``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ingest.punctuality.eta import HorizonAccuracy


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.messages = Counter(
            "medicobus_ingest_messages",
            "Messages processed, by outcome (stored, duplicate, rejected)",
            ["outcome"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "medicobus_ingest_rejected",
            "Messages rejected and quarantined, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.samples = Counter(
            "medicobus_ingest_samples_stored", "Samples stored", registry=self.registry
        )
        self.group_size = Histogram(
            "medicobus_ingest_group_messages",
            "Messages committed per transaction",
            buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2000),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "medicobus_ingest_batch_samples",
            "Samples per stored batch",
            buckets=(1, 2, 5, 10, 20, 50, 100, 250, 500),
            registry=self.registry,
        )
        self.lag = Histogram(
            "medicobus_ingest_lag_seconds",
            "From a batch's newest sample to its reception (outbox catch-up shows here)",
            buckets=(0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600, 86400),
            registry=self.registry,
        )
        self.backlog = Gauge(
            "medicobus_ingest_backlog_messages",
            "Messages received and not yet committed",
            registry=self.registry,
        )
        self.stays_reconciled = Counter(
            "medicobus_punctuality_stays_reconciled",
            "Detected events that contradicted a bus's open stay and were reconciled",
            registry=self.registry,
        )
        self.timeseries_pending = Gauge(
            "medicobus_timeseries_pending_points",
            "Points waiting for the time-series server",
            registry=self.registry,
        )

    def observe_group(
        self, outcomes: Sequence[tuple[str, str, int]], lags_s: Sequence[float]
    ) -> None:
        """``outcomes``: (status, reason, samples) per message; ``lags_s`` per stored batch."""
        self.group_size.observe(len(outcomes))
        for status, reason, samples in outcomes:
            self.messages.labels(status).inc()
            if status == "rejected":
                self.rejected.labels(reason).inc()
            elif status == "stored":
                self.samples.inc(samples)
                self.batch_size.observe(samples)
        for lag in lags_s:
            self.lag.observe(max(0.0, lag))

    def count_reconciled(self, n: int) -> None:
        self.stays_reconciled.inc(n)

    def track_backlog(self, backlog: Callable[[], int]) -> None:
        self.backlog.set_function(lambda: float(backlog()))

    def track_timeseries(self, pending: Callable[[], int]) -> None:
        self.timeseries_pending.set_function(lambda: float(pending()))

    def track_eta_accuracy(self, accuracy: Callable[[], Sequence[HorizonAccuracy]]) -> None:
        """Serve the ETAs' measured accuracy, read from ``accuracy`` at each scrape."""
        self.registry.register(EtaAccuracyCollector(accuracy))


class EtaAccuracyCollector(Collector):
    """Median and 90th percentile of the absolute error of the published ETAs and of the
    timetable, by horizon bucket, and how many predictions each bucket holds."""

    def __init__(self, accuracy: Callable[[], Sequence[HorizonAccuracy]]) -> None:
        self._accuracy = accuracy

    def collect(self) -> Iterator[GaugeMetricFamily]:
        errors = GaugeMetricFamily(
            "medicobus_eta_abs_error_seconds",
            "Absolute error of published ETAs (estimate=eta) and of the timetable "
            "(estimate=timetable) against the detected arrival, by minutes before it",
            labels=["bucket", "estimate", "quantile"],
        )
        counts = GaugeMetricFamily(
            "medicobus_eta_predictions_settled",
            "Published ETAs whose arrival was detected, by minutes before it",
            labels=["bucket"],
        )
        for a in self._accuracy():
            counts.add_metric([a.bucket], float(a.predictions))
            for estimate, quantile, value in (
                ("eta", "0.5", a.eta_p50_s),
                ("eta", "0.9", a.eta_p90_s),
                ("timetable", "0.5", a.timetable_p50_s),
                ("timetable", "0.9", a.timetable_p90_s),
            ):
                if value is not None:
                    errors.add_metric([a.bucket, estimate, quantile], value)
        yield errors
        yield counts


def lag_seconds(received_at: datetime, newest_sample: datetime) -> float:
    return (received_at - newest_sample).total_seconds()
