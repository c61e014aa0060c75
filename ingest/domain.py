"""The ingest's domain, assembled: cold chain, daily records, footprint, alerts.

One object holds the parts and their threads; the ``ingest`` command and the demo both
build it from the same settings and register its observers with the :class:`Ingestor`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from ingest.alerts.channels import EmailChannel, SmsChannel
from ingest.alerts.dispatch import AlertDispatcher
from ingest.alerts.evaluator import AlertEvaluator, ConditionSource
from ingest.alerts.rules import HealthThresholds
from ingest.alerts.webhook import Channel, DeliveryWorker, WebhookChannel
from ingest.coldchain.monitor import ColdChainMonitor, FridgeDayRecorder
from ingest.coldchain.rules import ColdChainConfig
from ingest.daily_records import (
    DailyRecordsWorker,
    PendingDays,
    RecordKind,
    RecordSource,
    fingerprint,
    marks_for,
)
from ingest.footprint.avoided import load_car_trip_factor
from ingest.footprint.emissions import CAR_TRIP_FACTOR_FILE, load_factor_set
from ingest.footprint.energy import EnergyConfigError, TractionProfile
from ingest.footprint.ledger import FootprintRecorder
from ingest.itinerary import Itinerary
from ingest.pipeline import BatchObserver
from ingest.reports.configuration import (
    FactorSetInfo,
    ReportConfiguration,
    record_configuration,
    record_itinerary,
    record_notification_settings,
)
from ingest.reports.mailing import ReportMailer
from ingest.settings import DomainSettings
from ingest.store import Coordinator, Store
from ingest.visit_figures import VisitFigures
from protocol.clock import Clock, SystemClock
from protocol.wire import Batch

log = logging.getLogger(__name__)


class DomainConfigError(ValueError):
    """Domain settings that do not fit the fleet; the message says which."""


class IngestDomain:
    def __init__(
        self,
        store: Store,
        itinerary: Itinerary,
        settings: DomainSettings,
        clock: Clock | None = None,
        *,
        condition_sources: Sequence[ConditionSource] = (),
        visit_figures: VisitFigures | None = None,
        coordinator: Coordinator | None = None,
    ) -> None:
        """``visit_figures``: what the funder's reports sent by e-mail say of visits
        (none: not recorded). ``coordinator``: the locks of the ingests sharing the
        database (by default, this one alone)."""
        self.store = store
        self.coordinator = coordinator or Coordinator(store.engine)
        self.settings = settings
        self.clock = clock or SystemClock()
        vehicle_ids = [v.id for v in itinerary.vehicles]
        unknown = sorted(set(settings.fridge_by_vehicle) - set(vehicle_ids))
        if unknown:
            raise DomainConfigError(
                f"fridge_by_vehicle: unknown vehicle(s) {', '.join(unknown)}; "
                f"the fleet has {', '.join(vehicle_ids)}"
            )
        self._profiles: dict[str, TractionProfile] = {}
        for v in itinerary.vehicles:
            try:
                self._profiles[v.id] = TractionProfile.of_vehicle(v)
            except EnergyConfigError as exc:
                log.warning("no footprint for %s: %s", v.id, exc)
        self._rules = {v: settings.fridge_rules(v) for v in vehicle_ids}
        self._configs = {v: r.config() for v, r in self._rules.items()}
        zone = itinerary.zone
        self.factors = load_factor_set(settings.footprint.factor_set)
        car_file = settings.footprint.car_trip_factor_file or CAR_TRIP_FACTOR_FILE
        self.car_trip_factor = load_car_trip_factor(car_file)
        idling = settings.footprint.idling()

        self.pending = PendingDays(store, zone, self.clock)
        self.coldchain = ColdChainMonitor(store, self.fridge_config, self.clock)
        fridge_days = FridgeDayRecorder(store, self.fridge_config, zone)
        footprint = FootprintRecorder(
            store,
            profiles=self._profiles.__getitem__,
            factors=self.factors,
            idling=idling,
            zone=zone,
        )
        sources: dict[RecordKind, RecordSource] = {
            "fridge": RecordSource(
                fridge_days,
                {v: fingerprint(self._rules[v].model_dump()) for v in vehicle_ids},
                on_new_basis=self._rebuild_alarms,
            ),
            "footprint": RecordSource(
                footprint,
                {
                    v: fingerprint(
                        {
                            "factor_set": [self.factors.id, self.factors.version],
                            "profile": [self._profiles[v].traction, self._profiles[v].per_100km],
                            "idling": idling.model_dump(),
                        }
                    )
                    for v in self._profiles
                },
            ),
        }
        self.daily = DailyRecordsWorker(
            store, self.pending, sources, self.clock, settings.derive_every_s
        )
        a = settings.alerts
        n = settings.notifications
        channels: list[Channel] = []
        if a.webhook_url is not None:
            channels.append(
                WebhookChannel(
                    str(a.webhook_url),
                    timeout_s=a.webhook_timeout_s,
                    max_attempts=a.webhook_max_attempts,
                    backoff_s=a.webhook_backoff_s,
                    max_backoff_s=a.webhook_max_backoff_s,
                )
            )
        if n.smtp is not None:
            channels.append(EmailChannel(n.smtp, n.delivery))
        if n.sms is not None:
            channels.append(SmsChannel(n.sms, n.delivery))
        # One worker for every channel, from the one queue.
        self.notifier = DeliveryWorker(store, channels) if channels else None
        self.dispatcher = (
            AlertDispatcher(
                store,
                n,
                zone,
                self.clock,
                on_queued=self.notifier.wake if self.notifier is not None else None,
            )
            if n.routes
            else None
        )
        operators = {v.operator for v in itinerary.vehicles}
        strangers = sorted({r.operator for r in n.routes} - operators)
        if strangers:
            raise DomainConfigError(
                f"notifications.routes: unknown operator(s) {', '.join(strangers)}; "
                f"the fleet's are {', '.join(sorted(operators))}"
            )
        unknown = sorted({v for r in n.reports for v in r.vehicles} - set(vehicle_ids))
        if unknown:
            raise DomainConfigError(
                f"notifications.reports: unknown vehicle(s) {', '.join(unknown)}; "
                f"the fleet has {', '.join(vehicle_ids)}"
            )
        self.report_mailer = (
            ReportMailer(
                store,
                n,
                self.clock,
                visits=visit_figures,
                on_queued=self.notifier.wake if self.notifier is not None else None,
            )
            if n.reports
            else None
        )
        record_notification_settings(store, n, self.clock.now())
        self.alerts = AlertEvaluator(
            store,
            HealthThresholds(
                offline_after=timedelta(seconds=a.offline_after_s),
                no_fix_after=timedelta(seconds=a.no_fix_after_s),
                low_soc_pct=a.low_soc_pct,
                low_soc_clear_pct=a.low_soc_clear_pct,
                confirm_after=timedelta(seconds=a.confirm_after_s),
            ),
            self.clock,
            notify=a.webhook_url is not None,
            on_change=self._alerts_changed,
            sources=condition_sources,
            tick_s=a.tick_s,
            vehicle_lock=self.coordinator.locking,
        )
        self._fridge_reach = {v: c.max_sample_spacing for v, c in self._configs.items()}
        self._zone = zone
        record_configuration(
            store,
            ReportConfiguration(
                timezone=itinerary.timezone,
                factor_set=FactorSetInfo.of(self.factors),
                car_trip_factor=self.car_trip_factor,
                idling=idling,
                fridge=self._rules,
                footprint_vehicles=sorted(self._profiles),
                recorded_at=self.clock.now(),
                operators={o.id: o.name for o in itinerary.operators},
                follow_up={o.id: o.follow_up for o in itinerary.operators},
                service_start={
                    v.id: start
                    for v in itinerary.vehicles
                    if (start := v.service_start or v.valid_from) is not None
                },
            ),
        )
        record_itinerary(store, itinerary, self.clock.now())

    def _rebuild_alarms(self, vehicle: str) -> None:
        with self.coordinator.locking(vehicle):
            self.coldchain.rebuild(vehicle)

    def _alerts_changed(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.wake()
        if self.notifier is not None:
            self.notifier.wake()

    def fridge_config(self, vehicle: str) -> ColdChainConfig:
        found = self._configs.get(vehicle)
        return found if found is not None else self.settings.fridge.config()

    # --- observers, in the order they must run ---------------------------------------

    def _mark_days(self, batches: Sequence[Batch]) -> None:
        self.pending.mark(marks_for(batches, self._zone, self._fridge_reach))

    def _update_alarms(self, batches: Sequence[Batch]) -> None:
        for update in self.coldchain.on_batches(batches):
            for start, end in update.touched:
                self.pending.mark_span(update.vehicle, "fridge", start, end)

    @property
    def observers(self) -> list[BatchObserver]:
        """Cold chain first (alerts read its alarms), then the day marks, then alerts."""
        return [self._update_alarms, self._mark_days, self.alerts.on_batches]

    # --- threads -----------------------------------------------------------------------

    def catch_up(self) -> None:
        """Do now what the threads do in the background: rebuild marked days, evaluate
        alerts, send due notifications."""
        self.daily.catch_up()
        self.alerts.evaluate()
        if self.dispatcher is not None:
            self.dispatcher.dispatch()
        if self.report_mailer is not None:
            self.report_mailer.mail_due()
        if self.notifier is not None:
            self.notifier.send_due()

    def start(self, *, leading: bool = True) -> None:
        """Start the alerts' evaluation and, if ``leading``, what one ingest does for the
        whole fleet (see :meth:`lead`)."""
        self.alerts.ticking = False
        self.alerts.start()
        if leading:
            self.lead()

    def lead(self) -> None:
        """Start what only one of the ingests sharing a database does: the alerts' clock,
        daily records, notifications and reports."""
        self.alerts.ticking = True
        self.daily.start()
        if self.dispatcher is not None:
            self.dispatcher.start()
        if self.report_mailer is not None:
            self.report_mailer.start()
        if self.notifier is not None:
            self.notifier.start()
        log.info(
            "domain: factor set %s v%s, alerts every %.0f s%s",
            self.factors.id,
            self.factors.version,
            self.settings.alerts.tick_s,
            f", notifications by {', '.join(self.notifier.channels)}" if self.notifier else "",
        )

    def stop(self) -> None:
        self.alerts.stop()
        if self.dispatcher is not None:
            self.dispatcher.stop()
        if self.report_mailer is not None:
            self.report_mailer.stop()
        self.daily.stop()
        if self.notifier is not None:
            self.notifier.stop()
