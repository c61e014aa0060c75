"""The ingest's punctuality observer: GPS fixes in, visits kept up to date in the store.

After each group of new batches is committed, each vehicle's fixes go through its live
:class:`ArrivalDetector`; the arrivals and departures it makes certain are stored with
their evidence, and the vehicle's day is classified again (detected arrival and departure
of each visit, unscheduled stops). Then the ETAs of its next visits are refreshed.

Late data. A fix older than what the live detector already processed would be dropped by
it, so the day it belongs to is re-derived instead: ``detect_stops`` over the day's stored
fixes (from ``RUN_IN`` before local midnight, so a stay begun the evening before is seen
as such), replacing that day's events. If it is the live detector's day, the live detector
is rebuilt from the same stored fixes, so each day's events always come from one run of
the detector. A restarted ingest rebuilds a vehicle's live detector the same way when its
first batch arrives. Everything here is re-derivable from the stored samples.

Stays across midnight. A bus parked overnight at a stop (its depot) arrives one day and
departs the next. A day is classified with the events around it that belong to such a
stay (the arrival of the stay open when the day began, the departure of the one open when
it ended), so the evening's stay gets its departure and the next day lists the stay it
began in. A day is re-derived from the arrival of the stay open at its start (up to
``MAX_STAY_RUN_IN`` back), so that run sees the same stay rather than a new arrival.

Contradictions. Events from different runs of the detector can contradict each other (a
drive whose data ended inside a zone, then live data from the same bus): a day with one is
re-derived; what remains across days is reconciled (see
:func:`~ingest.punctuality.classification.reconciled_stays`), logged and counted
(``on_reconciled``), never raised: one bad stay must not stop a bus's punctuality.

Several ingests. With several ingests sharing the load, each sees part of a vehicle's
fixes: the tracker is called under the vehicle's lock (:mod:`ingest.derivation`), and
told to :meth:`~PunctualityTracker.forget` the vehicle when another ingest derived it
since; its next fixes then rebuild the live detector from the stored fixes, as after a
restart.
"""

from __future__ import annotations

import itertools
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta

from ingest.itinerary import Itinerary
from ingest.local_days import LocalDay, local_date
from ingest.punctuality.classification import PunctualityReport, classify_visits
from ingest.punctuality.config import PunctualitySettings
from ingest.punctuality.detector import (
    ArrivalDetector,
    Fix,
    StopArrival,
    StopEvent,
    detect_stops,
)
from ingest.punctuality.eta import (
    DrivingModel,
    Habits,
    HeldVisit,
    LegTrip,
    accuracy_by_horizon,
    learn_driving,
    learn_habits,
    leg_trips,
    predict_arrivals,
    whereabouts,
    with_timetable_where_better,
)
from ingest.punctuality.schedule import Visit, expand_schedule, schedule_rules
from ingest.punctuality.storage import PunctualityStore
from ingest.store import Store
from protocol.wire import Batch

log = logging.getLogger(__name__)

RUN_IN = timedelta(hours=6)
# A stay open longer than this (a long weekend at the depot) is not replayed from its start.
MAX_STAY_RUN_IN = timedelta(days=4)
# Reconciliations already counted, per process: bounded, as the reconciled events are.
_RECONCILED_MEMORY = 10_000
# Driving times and habits are learnt from this much history.
SPEED_HISTORY_DAYS = 90
# The fixes that tell whether the bus is moving, since when it stands, and its heading.
RECENT_FIXES = timedelta(minutes=10)
# The measured accuracy that decides where the timetable is shown instead, and how often
# it is looked at again.
ACCURACY_HISTORY = timedelta(days=30)
ACCURACY_EVERY = timedelta(hours=1)
ACCURACY_MIN_PREDICTIONS = 30


class PunctualityTracker:
    """An ``Ingestor`` observer (call it with the batches just committed)."""

    def __init__(
        self,
        store: Store,
        itinerary: Itinerary,
        settings: PunctualitySettings | None = None,
        on_reconciled: Callable[[int], None] | None = None,
    ) -> None:
        self.db = PunctualityStore(store)
        self._on_reconciled = on_reconciled
        self._reconciled_seen: set[tuple[str, str, str, datetime]] = set()
        self.reconciled = 0
        self.itinerary = itinerary
        self.settings = settings or PunctualitySettings()
        self._zone = itinerary.zone
        self._rules = schedule_rules(itinerary)
        self._thresholds = self.settings.thresholds()
        self._detector_config = self.settings.detector.config()
        self._stops = {s.id: s for s in itinerary.stops}
        self._vehicles = {v.id for v in itinerary.vehicles}
        self._live: dict[str, ArrivalDetector] = {}
        self._materialised: set[date] = set()
        self._eta_at: dict[str, datetime] = {}
        # How far each vehicle's fixes have gone past visits' windows (see _days_closed).
        self._windows_closed_until: dict[str, datetime] = {}
        self._learnt: dict[str, tuple[DrivingModel, Habits]] = {}
        # Moving time of each trip already measured (fixes are read once per trip).
        self._trips: dict[tuple[str, datetime, datetime], LegTrip | None] = {}
        self._timetable_better: dict[str, tuple[datetime, frozenset[str]]] = {}

    # --- timetable ------------------------------------------------------------------------

    def start(self, today: date, past_days: int = 30) -> None:
        """Materialise the visits from ``past_days`` ago to the horizon, and classify the
        days in that range that already have detections (a restart, a changed timetable)."""
        first = today - timedelta(days=past_days)
        last = today + timedelta(days=self.settings.horizon_days)
        self.materialise(first, last)
        for vehicle, day in self.db.event_days(first, last):
            if vehicle in self._vehicles:
                self._classify(vehicle, day)

    def materialise(self, first: date, last: date) -> None:
        planned = expand_schedule(self.itinerary, first, last, self._rules)
        self.db.materialise(planned, first, last, self._thresholds)
        day = first
        while day <= last:
            self._materialised.add(day)
            day += timedelta(days=1)

    def _ensure_materialised(self, days: set[date]) -> None:
        horizon = timedelta(days=self.settings.horizon_days)
        missing = sorted(d for d in days if d not in self._materialised)
        missing += sorted(d + horizon for d in days if d + horizon not in self._materialised)
        if missing:
            self.materialise(min(missing), max(missing))

    # --- observer -------------------------------------------------------------------------

    def __call__(self, batches: Sequence[Batch]) -> None:
        fixes: dict[str, list[Fix]] = defaultdict(list)
        for batch in batches:
            if batch.stream != "gps" or batch.vehicle not in self._vehicles:
                continue
            for sample in batch.samples:
                fix = Fix.from_sample(sample)
                if fix is not None:
                    fixes[batch.vehicle].append(fix)
        for vehicle, own in fixes.items():
            self.track(vehicle, sorted(own, key=lambda f: f.t))

    def forget(self, vehicle: str) -> None:
        """Drop what is remembered of ``vehicle`` (its live detector, how far its visits'
        windows were followed, what was learnt of its driving): another ingest moved its
        state on since. Its next fixes rebuild all of it from the stored ones."""
        self._live.pop(vehicle, None)
        self._eta_at.pop(vehicle, None)
        self._windows_closed_until.pop(vehicle, None)
        self._learnt.pop(vehicle, None)
        self._timetable_better.pop(vehicle, None)

    def track(self, vehicle: str, fixes: Sequence[Fix]) -> None:
        """Take fixes of ``vehicle`` that are already stored, in time order."""
        if not fixes:
            return
        self._ensure_materialised({self._day(f.t) for f in fixes})
        live = self._live.get(vehicle)
        processed = live.processed_until if live is not None else None
        touched: set[date] = set()
        if live is None:
            for day in sorted({self._day(f.t) for f in fixes}):
                self._rederive(vehicle, day)
                touched.add(day)
            touched |= self._rebuild(vehicle)
        elif processed is not None and fixes[0].t < processed:
            live_day = self._day(processed)
            late_days = sorted({self._day(f.t) for f in fixes if f.t < processed})
            log.info("%s: late fixes of %s; re-deriving", vehicle, ", ".join(map(str, late_days)))
            for day in late_days:
                if day != live_day:
                    self._rederive(vehicle, day)
                    touched.add(day)
            if live_day in late_days:
                touched |= self._rebuild(vehicle)
            else:
                touched |= self._feed(vehicle, live, [f for f in fixes if f.t >= processed])
        else:
            touched |= self._feed(vehicle, live, fixes)
        for day in sorted(touched | self._days_closed(vehicle, fixes)):
            self._classify(vehicle, day)
        if touched:
            self._learnt.pop(vehicle, None)
        self._update_etas(vehicle, fixes[-1], force=bool(touched))

    def _day(self, t: datetime) -> date:
        return local_date(t, self._zone)

    def _days_closed(self, vehicle: str, fixes: Sequence[Fix]) -> set[date]:
        """The days of visits whose matching window these fixes (in time order) went
        past. Classified again, a visit no stay matched turns missed, and its time-series
        point says so, even on a day the bus reached no stop (no detection touches it)."""
        newest = fixes[-1].t
        after = self._windows_closed_until.get(vehicle, fixes[0].t)
        if newest <= after:
            return set()
        longest = timedelta(days=1) + self._thresholds.match_after_departure
        self._windows_closed_until[vehicle] = newest
        return self.db.days_with_visits_closing(vehicle, after, newest, longest)

    def _feed(self, vehicle: str, live: ArrivalDetector, fixes: Sequence[Fix]) -> set[date]:
        events = live.feed_many(fixes)
        self.db.add_events([(e, self._day(e.t)) for e in events])
        return self._days_of(vehicle, events)

    def _days_of(self, vehicle: str, events: Sequence[StopEvent]) -> set[date]:
        """The days these events change: their own, and the day a stay that one of them
        ends across midnight began."""
        days = {self._day(e.t) for e in events}
        for day in sorted(days):
            for e in self._stay_across(vehicle, day):
                if isinstance(e, StopArrival):
                    days.add(self._day(e.t))
        return days

    def _stay_across(self, vehicle: str, day: date) -> list[StopEvent]:
        """The events of stays crossing ``day``'s midnights (see the module docstring); a
        stay open for longer than ``MAX_STAY_RUN_IN`` is not carried into the day."""
        opened_since = LocalDay.of(day, self._zone).start - MAX_STAY_RUN_IN
        return [
            e
            for e in self.db.stay_across(vehicle, day)
            if not isinstance(e, StopArrival) or e.t >= opened_since
        ]

    def _run_in_start(self, vehicle: str, day: date) -> datetime:
        """Where a run of the detector for ``day`` starts: ``RUN_IN`` before its midnight,
        or before the arrival of the stay open at that midnight."""
        local = LocalDay.of(day, self._zone)
        start = local.start - RUN_IN
        for e in self._stay_across(vehicle, day):
            if isinstance(e, StopArrival):
                start = min(start, (e.earliest or e.t) - RUN_IN)
        return start

    def _detect(self, vehicle: str, day: date) -> list[StopEvent]:
        local = LocalDay.of(day, self._zone)
        fixes = self.db.fixes(vehicle, self._run_in_start(vehicle, day), local.end)
        events = detect_stops(vehicle, self._stops.values(), fixes, self._detector_config)
        return [e for e in events if local.start <= e.t < local.end]

    def _rederive(self, vehicle: str, day: date) -> None:
        self.db.replace_events(vehicle, day, self._detect(vehicle, day))

    def _rebuild(self, vehicle: str) -> set[date]:
        """A new live detector from the stored fixes of the vehicle's latest day, whose
        events are re-derived with it."""
        newest = self.db.newest_fix_time(vehicle)
        if newest is None:
            return set()
        day = self._day(newest)
        self._rederive(vehicle, day)
        live = ArrivalDetector(vehicle, self._stops.values(), self._detector_config)
        # Same fixes, same order as the re-derivation: the events it emits are already stored.
        live.feed_many(self.db.fixes(vehicle, self._run_in_start(vehicle, day)))
        self._live[vehicle] = live
        return self._days_of(vehicle, self.db.events(vehicle, day)) | {day}

    def _classify(self, vehicle: str, day: date) -> None:
        planned = self.db.planned_visits(vehicle, day)
        local = LocalDay.of(day, self._zone)

        def classified() -> PunctualityReport:
            events = self.db.events(vehicle, day) + self._stay_across(vehicle, day)
            as_of = max([local.end, *(e.t for e in events)])
            return classify_visits(planned, events, as_of=as_of, thresholds=self._thresholds)

        report = classified()
        if any(local.start <= r.open_since and r.t < local.end for r in report.reconciled):
            # Events from two runs of the detector disagree within the day: one run settles it.
            log.warning("%s on %s: inconsistent events; re-deriving the day", vehicle, day)
            self._rederive(vehicle, day)
            report = classified()
        self._count_reconciled(report)
        known_until = self.db.newest_fix_time(vehicle) or local.end
        self.db.save_outcomes(vehicle, day, report, known_until=known_until)
        self.db.settle_predictions({o.visit.id: o.arrival for o in report.outcomes})

    def _count_reconciled(self, report: PunctualityReport) -> None:
        new = 0
        for r in report.reconciled:
            key = (r.vehicle, r.kind, r.stop, r.t)
            if key in self._reconciled_seen:
                continue
            if len(self._reconciled_seen) >= _RECONCILED_MEMORY:
                self._reconciled_seen.clear()
            self._reconciled_seen.add(key)
            new += 1
            log.warning(
                "%s: %s at %s at %s while at %s: %s",
                r.vehicle,
                r.kind,
                r.stop,
                r.t.isoformat(),
                r.open_stop,
                r.outcome,
            )
        if new:
            self.reconciled += new
            if self._on_reconciled is not None:
                self._on_reconciled(new)

    # --- ETAs -----------------------------------------------------------------------------

    def _learn(self, vehicle: str, day: date) -> tuple[DrivingModel, Habits]:
        """The vehicle's driving times (moving time of its past trips) and habits (how it
        keeps each slot), learnt again when its detections change."""
        learnt = self._learnt.get(vehicle)
        if learnt is not None:
            return learnt
        since = day - timedelta(days=SPEED_HISTORY_DAYS)
        stays = self.db.stays(vehicle, since)
        trips = []
        seen: set[tuple[str, datetime, datetime]] = set()
        for before, after in itertools.pairwise(stays):
            if before.departure is None:
                continue
            key = (vehicle, before.departure, after.arrival)
            seen.add(key)
            if key not in self._trips:
                found = leg_trips([before, after], lambda a, b: self.db.fixes(vehicle, a, b))
                self._trips[key] = found[0] if found else None
            trip = self._trips[key]
            if trip is not None:
                trips.append(trip)
        # Trips out of the history (or re-derived away) are forgotten.
        for key in [k for k in self._trips if k[0] == vehicle and k not in seen]:
            del self._trips[key]
        default = DrivingModel.default(self.settings.default_speed_kmh, self.settings.detour_factor)
        held = [
            HeldVisit(
                Visit(
                    r.id,
                    r.vehicle,
                    r.stop,
                    r.day,
                    r.facts.scheduled_arrival,
                    r.facts.scheduled_departure,
                ),
                r.facts.detected_arrival,
            )
            for r in self.db.visits_between(since, day - timedelta(days=1), vehicle)
            if r.facts.detected_arrival is not None
        ]
        learnt = (learn_driving(trips, self._stops, default), learn_habits(held))
        self._learnt[vehicle] = learnt
        return learnt

    def _buckets_for_timetable(self, vehicle: str, now: datetime) -> frozenset[str]:
        """Horizons at which the timetable has been closer than this vehicle's ETAs."""
        cached = self._timetable_better.get(vehicle)
        if cached is not None and timedelta(0) <= now - cached[0] < ACCURACY_EVERY:
            return cached[1]
        outcomes = self.db.prediction_outcomes(now - ACCURACY_HISTORY, now, [vehicle])
        better = frozenset(
            a.bucket
            for a in accuracy_by_horizon(outcomes)
            if a.predictions >= ACCURACY_MIN_PREDICTIONS and a.timetable_better
        )
        self._timetable_better[vehicle] = (now, better)
        return better

    def _update_etas(self, vehicle: str, latest: Fix, force: bool) -> None:
        previous = self._eta_at.get(vehicle)
        if previous is not None and latest.t <= previous:
            return  # late data says nothing about where the bus is now
        if previous is None:
            # Nothing remembered (a restart, or another ingest moved the vehicle on): the
            # stored fixes say whether these are the newest.
            newest = self.db.newest_fix_time(vehicle)
            if newest is not None and latest.t < newest:
                return
        if (
            not force
            and previous is not None
            and (latest.t - previous).total_seconds() < self.settings.eta_every_s
        ):
            return
        self._eta_at[vehicle] = latest.t
        day = self._day(latest.t)
        planned = self.db.planned_visits(vehicle, day)
        rows = self.db.visits_between(day, day, vehicle)
        made = {r.id for r in rows if r.facts.detected_arrival is not None}
        cancelled = self.db.cancelled_by_coordinators(v.id for v in planned)
        driving, habits = self._learn(vehicle, day)
        live = self._live.get(vehicle)
        at_stop = live.current_stop if live is not None else None
        if at_stop is not None:
            made |= {
                v.id
                for v in planned
                if v.stop == at_stop
                and v.scheduled_arrival - self._thresholds.match_before <= latest.t
            }
        current = max(
            (v for v in planned if v.id in made and v.stop == at_stop),
            key=lambda v: v.scheduled_arrival,
            default=None,
        )
        stays = self.db.stays(vehicle, day)
        last_stop = next((s.stop for s in reversed(stays) if s.departure), None)
        recent = self.db.fixes(vehicle, latest.t - RECENT_FIXES, latest.t + timedelta(seconds=1))
        where = whereabouts(recent or [latest], at_stop=at_stop, last_stop=last_stop)
        try:
            predictions = predict_arrivals(
                where,
                visits=[v for v in planned if v.id not in cancelled],
                stops=self._stops,
                driving=driving,
                habits=habits,
                thresholds=self._thresholds,
                made=made,
                current=current,
                limit=self.settings.eta_visits,
                detour_factor=self.settings.detour_factor,
            )
        except ValueError as exc:
            log.warning("%s: no ETA from %s: %s", vehicle, latest.t.isoformat(), exc)
            return
        better = self._buckets_for_timetable(vehicle, latest.t)
        predictions = [with_timetable_where_better(p, latest.t, better) for p in predictions]
        self.db.save_etas(vehicle, day, predictions, latest.t)
