"""Accuracy of the arrival detector on the labelled scenario days.

Every bundled scenario is replayed on each weekday of its week on which it fits, in a few
variants (other dates and noise seeds, an early crew, a receiver with a poorer sky view:
see ``simulators.labelled_days``). The receiver's fixes of each day go through
``detect_stops`` with the production detector configuration (``DetectorConfig()``), and
its arrivals and departures are compared with the true ones (``simulators.accuracy``:
same vehicle, stop and kind, within 10 min; a drive-by or a red light taken for an arrival
is a false positive). The true departure is when the bus set off from where it rested. A
naive detector (first fix inside the stop's circle = arrival, last fix inside =
departure) is measured on the same fixes as a baseline.

Three more sets:

- arrivals inside GPS outages: each scenario's own day again for each stop it drives to,
  the receiver losing its fix 20 s to 5 min before the bus comes to rest and finding it
  after, outages of at most 10 min (``arrivals_in_outages``). Every such arrival must be
  detected as estimated, with bounds that hold the true arrival; its error is measured;
- overnight stays: every weekday of a normal week of each bus (``WEEK_SCENARIOS``), in
  order, through the ingest's tracker
  on a real SQLite store (the bus parked at its depot, also a stop, each night). Each
  night's stay must be closed (the evening's stay gets the next morning's departure) and
  listed as the next day's start-of-day stay;
- an interrupted drive: a day whose data end inside a stop's zone, then, after a restart,
  the rest of the bus's week live. The tracker must never raise, and the later days'
  arrivals must all be detected; the stays reconciled are counted.

    .venv/bin/python bench/punctuality_accuracy.py [--jobs N] [--scenario NAME ...]

Prints one line per scenario, the detector's events more than 30 s off, its misses and
false detections, the outage, overnight and interrupted figures, then the last line:
``visits=… precision=… recall=… p95_error_s=…`` (arrivals and departures together),
``departure_p95_error_s``, the outage arrivals' ``outage_in_bounds``/``outage_arrivals``
and ``outage_p95_error_s``, ``overnight_closed``/``overnight_stays``, then the baseline's
figures (``baseline_outage_p95_error_s``: the first fix after the gap, as the detector
reported before it estimated), counts, and the ratios of the baseline's errors to the
detector's (``departure_error_ratio``, ``outage_error_ratio``).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tempfile
from datetime import timedelta

from ingest.geo import haversine_m
from ingest.itinerary import Itinerary, Stop, load_itinerary
from ingest.local_days import LocalDay
from ingest.pipeline import Ingestor
from ingest.punctuality.detector import DetectorConfig, Fix, StopArrival, detect_stops
from ingest.punctuality.storage import PunctualityStore
from ingest.punctuality.tracker import PunctualityTracker
from ingest.store import Store
from ingest.validation import Limits
from protocol import GpsBatch, GpsSample, encode, topic_for
from protocol.models import Batch
from simulators.accuracy import DetectedEvent, Scorecard, percentile, pooled, score
from simulators.cli import bundled_itinerary
from simulators.labelled_days import (
    AS_WRITTEN,
    DEFAULT_VARIANTS,
    LabelledDay,
    Variant,
    arrivals_in_outages,
    labelled_days,
)
from simulators.scenario import bundled_scenarios

WORST_S = 30.0
# A normal week of each bus, through the tracker (slow: a real store, every fix ingested).
WEEK_SCENARIOS = ("vexin-monday-on-time", "caux-traffic-jam")


def naive_stops(vehicle: str, stops: Sequence[Stop], fixes: Iterable[Fix]) -> list[DetectedEvent]:
    """First fix inside a stop's circle = arrival, last fix inside before one outside =
    departure: what a geofence alone would say."""
    events: list[DetectedEvent] = []
    inside: Stop | None = None
    last_inside: Fix | None = None
    for fix in sorted(fixes, key=lambda f: f.t):
        if inside is not None:
            if haversine_m(inside.lat, inside.lon, fix.lat, fix.lon) <= inside.radius_m:
                last_inside = fix
                continue
            assert last_inside is not None
            events.append(DetectedEvent(vehicle, inside.id, "departure", last_inside.t))
            inside = None
        for stop in stops:
            if haversine_m(stop.lat, stop.lon, fix.lat, fix.lon) <= stop.radius_m:
                inside, last_inside = stop, fix
                events.append(DetectedEvent(vehicle, stop.id, "arrival", fix.t))
                break
    return events


@dataclass(frozen=True)
class DayResult:
    label: str
    scenario: str
    visits: int
    decoys: int
    detector: Scorecard
    baseline: Scorecard


@cache
def _load() -> Itinerary:
    """The bundled itinerary, loaded once per worker process."""
    return load_itinerary(bundled_itinerary())


def evaluate(job: tuple[str, Variant]) -> list[DayResult]:
    """Every labelled day of one scenario in one variant."""
    name, variant = job
    itinerary = _load()
    config = DetectorConfig()
    results = []
    for day in labelled_days(itinerary, [name], [variant]):
        fixes = day.fixes()
        detected = detect_stops(day.vehicle, itinerary.stops, fixes, config)
        naive = naive_stops(day.vehicle, itinerary.stops, fixes)
        results.append(
            DayResult(
                day.label,
                name,
                day.visits,
                len(day.decoys),
                score(day.true_events, detected, day.decoys),
                score(day.true_events, naive, day.decoys),
            )
        )
    return results


@dataclass(frozen=True)
class OutageArrival:
    label: str
    stop: str
    detected: bool
    estimated: bool
    in_bounds: bool
    error_s: float | None
    first_fix_error_s: float | None


def evaluate_outages(job: tuple[str, Variant]) -> list[OutageArrival]:
    """The arrivals inside an outage of every outage day of one scenario in one variant."""
    name, variant = job
    itinerary = _load()
    config = DetectorConfig()
    found = []
    for day in arrivals_in_outages(itinerary, [name], [variant]):
        detected = detect_stops(day.vehicle, itinerary.stops, day.fixes(), config)
        card = score(day.true_events, detected, day.decoys)
        pairs = {(p.truth.stop, p.truth.t): p.detected for p in card.matched if p.truth.in_outage}
        for true in day.true_events:
            if true.kind != "arrival" or not true.in_outage or true.censored:
                continue
            d = pairs.get((true.stop, true.t))
            if d is None:
                # A detection the scorer put aside (a red light in the zone during the
                # outage) still counts if it is the stop's estimated arrival around then.
                d = next(
                    (
                        DetectedEvent.of(e)
                        for e in detected
                        if isinstance(e, StopArrival)
                        and e.stop == true.stop
                        and e.estimated
                        and abs(e.t - true.t) <= timedelta(minutes=10)
                    ),
                    None,
                )
            found.append(
                OutageArrival(
                    day.label,
                    true.stop,
                    d is not None,
                    d is not None and d.earliest is not None,
                    d is not None and d.bounds_hold(true.t),
                    None if d is None else (d.t - true.t).total_seconds(),
                    None if d is None or d.latest is None else (d.latest - true.t).total_seconds(),
                )
            )
    return found


@dataclass(frozen=True)
class TrackedWeek:
    """A bus's week through the tracker: its nights' stays, and its later days' visits
    after an interrupted drive."""

    overnight_stays: int = 0
    overnight_closed: int = 0
    start_of_day_listed: int = 0
    overnight_departure_errors_s: tuple[float, ...] = ()
    visits_after_interruption: int = 0
    detected_after_interruption: int = 0
    reconciled: int = 0
    tracker_errors: int = 0


def _samples(fixes: Sequence[Fix]) -> list[GpsSample]:
    return [
        GpsSample(t=f.t, lat=f.lat, lon=f.lon, speed_mps=f.speed_mps, fix_mode=3, hdop=f.hdop)
        for f in fixes
    ]


class _Feed:
    """Fixes into a real store through the ingest, with the tracker observing."""

    def __init__(self, store: Store, tracker: PunctualityTracker) -> None:
        self.tracker = tracker
        limits = Limits(max_age=timedelta(days=3650))
        self.ingestor = Ingestor(store, limits, observers=[self._observe])
        self.seq = 0
        self.errors = 0

    def _observe(self, batches: Sequence[Batch]) -> None:
        # The ingest logs an observer's failure and goes on: count them here.
        try:
            self.tracker(batches)
        except Exception as exc:
            print(f"  tracker raised: {exc!r}")
            self.errors += 1

    def send(self, vehicle: str, fixes: Sequence[Fix], batch: int = 600) -> None:
        samples = _samples(fixes)
        for i in range(0, len(samples), batch):
            part = samples[i : i + batch]
            self.seq += 1
            message = GpsBatch(vehicle=vehicle, seq=self.seq, samples=part)
            received = part[-1].t + timedelta(minutes=1)
            outcome = self.ingestor.handle(topic_for(vehicle, "gps"), encode(message), received)
            if outcome.status == "rejected":
                self.errors += 1


def evaluate_week(name: str) -> TrackedWeek:
    """One scenario's week (as written) through the tracker: consecutive days, then again
    with its first day cut inside a stop's zone and the ingest restarted."""
    itinerary = _load()
    days = list(labelled_days(itinerary, [name], [AS_WRITTEN]))
    if len(days) < 2:
        return TrackedWeek()
    with tempfile.TemporaryDirectory() as folder:
        week = _overnight(itinerary, days, f"sqlite:///{folder}/overnight.sqlite")
        interrupted = _interrupted(itinerary, days, f"sqlite:///{folder}/interrupted.sqlite")
    return TrackedWeek(
        week.overnight_stays,
        week.overnight_closed,
        week.start_of_day_listed,
        week.overnight_departure_errors_s,
        interrupted.visits_after_interruption,
        interrupted.detected_after_interruption,
        interrupted.reconciled,
        week.tracker_errors + interrupted.tracker_errors,
    )


def _store(url: str, itinerary: Itinerary) -> Store:
    store = Store.open(url)
    store.load_fleet(itinerary)
    return store


def _overnight(itinerary: Itinerary, days: Sequence[LabelledDay], url: str) -> TrackedWeek:
    store = _store(url, itinerary)
    tracker = PunctualityTracker(store, itinerary)
    tracker.start(days[0].day, past_days=1)
    feed = _Feed(store, tracker)
    errors = 0
    for day in days:
        try:
            feed.send(day.vehicle, day.fixes())
        except Exception as exc:
            print(f"  tracker raised on {day.label}: {exc!r}")
            errors += 1
    db = PunctualityStore(store)
    stays = closed = listed = 0
    departure_errors: list[float] = []
    for evening, morning in itertools.pairwise(days):
        arrived = [e for e in evening.true_events if e.kind == "arrival"][-1]
        left = next(e for e in morning.true_events if e.kind == "departure")
        if arrived.stop != left.stop:
            continue
        stays += 1
        # The evening's stay: unscheduled (the depot), or a visit's (a visit at the depot).
        found = [
            (u.arrival, u.departure)
            for u in db.unscheduled(evening.day, evening.day, evening.vehicle)
            if u.stop == arrived.stop
        ] + [
            (r.facts.detected_arrival, r.facts.detected_departure)
            for r in db.visits_between(evening.day, evening.day, evening.vehicle)
            if r.stop == arrived.stop and r.facts.detected_arrival is not None
        ]
        own = [d for a, d in found if abs(a - arrived.t) <= timedelta(minutes=2)]
        if own and own[0] is not None:
            closed += 1
            departure_errors.append((own[0] - left.t).total_seconds())
        start = LocalDay.of(morning.day, itinerary.zone).start
        if any(
            u.stop == left.stop and u.arrival < start
            for u in db.unscheduled(morning.day, morning.day, morning.vehicle)
        ):
            listed += 1
    store.close()
    return TrackedWeek(
        overnight_stays=stays,
        overnight_closed=closed,
        start_of_day_listed=listed,
        overnight_departure_errors_s=tuple(departure_errors),
        tracker_errors=errors + feed.errors,
    )


def _interrupted(itinerary: Itinerary, days: Sequence[LabelledDay], url: str) -> TrackedWeek:
    store = _store(url, itinerary)
    first, rest = days[0], days[1:]
    stays = [e for e in first.true_events if e.kind == "arrival" and not e.censored]
    cut = stays[0].t + timedelta(minutes=20)  # inside the first stop's zone
    errors = 0
    tracker = PunctualityTracker(store, itinerary)
    tracker.start(first.day, past_days=1)
    feed = _Feed(store, tracker)
    feed.send(first.vehicle, [f for f in first.fixes() if f.t <= cut])
    # The ingest restarts; live data of the following days come in.
    tracker = PunctualityTracker(store, itinerary)
    tracker.start(rest[0].day, past_days=7)
    feed = _Feed(store, tracker)
    feed.seq = 10_000
    for day in rest:
        try:
            feed.send(day.vehicle, day.fixes())
        except Exception as exc:
            print(f"  tracker raised on {day.label} after an interruption: {exc!r}")
            errors += 1
    db = PunctualityStore(store)
    visits = detected = 0
    for day in rest:
        rows = {r.stop: r for r in db.visits_between(day.day, day.day, day.vehicle)}
        for visit in day.truth.visits:
            # Parked there when the day's data begin: no detector can time that arrival.
            if visit.arrival is None or visit.arrival <= day.truth.start:
                continue
            visits += 1
            row = rows.get(visit.stop)
            got = row.facts.detected_arrival if row is not None else None
            if got is not None and abs(got - visit.arrival) <= timedelta(seconds=60):
                detected += 1
    store.close()
    return TrackedWeek(
        visits_after_interruption=visits,
        detected_after_interruption=detected,
        reconciled=tracker.reconciled,
        tracker_errors=errors + feed.errors,
    )


def _fmt(value: float | None, digits: int = 1) -> str:
    return "nan" if value is None else f"{value:.{digits}f}"


def _figures(card: Scorecard, prefix: str = "") -> str:
    return (
        f"{prefix}precision={card.precision:.4f} {prefix}recall={card.recall:.4f} "
        f"{prefix}p95_error_s={_fmt(card.p95_error_s)}"
    )


def _details(results: Sequence[DayResult]) -> None:
    for r in results:
        card = r.detector
        for pair in card.matched:
            if abs(pair.error_s) > WORST_S:
                t = pair.truth
                print(
                    f"  off {r.label}: {t.kind} at {t.stop} {t.t:%H:%M:%S}Z "
                    f"detected {pair.detected.t:%H:%M:%S}Z ({pair.error_s:+.0f} s)"
                )
        for miss in card.false_negatives:
            print(f"  missed {r.label}: {miss.kind} at {miss.stop} {miss.t:%H:%M:%S}Z")
        for fp in card.false_positives:
            d = fp.detected
            why = f"during a {fp.decoy.kind}" if fp.decoy is not None else "no true event"
            print(f"  false {r.label}: {d.kind} at {d.stop} {d.t:%H:%M:%S}Z ({why})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--scenario", action="append", help="bundled scenario (repeatable; default: all)"
    )
    args = parser.parse_args()
    names = args.scenario or list(bundled_scenarios())
    jobs = [(name, variant) for name in names for variant in DEFAULT_VARIANTS]

    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = [r for batch in pool.map(evaluate, jobs) for r in batch]
        outages = [a for batch in pool.map(evaluate_outages, jobs) for a in batch]
        weeks = list(pool.map(evaluate_week, [n for n in WEEK_SCENARIOS if n in names]))
    elapsed = time.perf_counter() - started

    for name in names:
        own = [r for r in results if r.scenario == name]
        detector = pooled(r.detector for r in own)
        baseline = pooled(r.baseline for r in own)
        print(
            f"scenario={name} days={len(own)} visits={sum(r.visits for r in own)} "
            f"events={detector.true_events} matched={len(detector.matched)} "
            f"fp={len(detector.false_positives)} fn={len(detector.false_negatives)} "
            f"decoys={sum(r.decoys for r in own)} decoy_hits={detector.decoy_hits} "
            f"{_figures(detector)} max_error_s={_fmt(detector.max_error_s)} "
            f"{_figures(baseline, 'baseline_')} baseline_decoy_hits={baseline.decoy_hits}"
        )
    _details(results)

    for a in outages:
        if not a.in_bounds or a.error_s is None or abs(a.error_s) > 60:
            print(
                f"  outage {a.label}: arrival at {a.stop} detected={a.detected} "
                f"estimated={a.estimated} in_bounds={a.in_bounds} error_s={_fmt(a.error_s)}"
            )
    outage_errors = [abs(a.error_s) for a in outages if a.error_s is not None]
    first_fix_errors = [abs(a.first_fix_error_s) for a in outages if a.first_fix_error_s]
    in_bounds = sum(1 for a in outages if a.in_bounds)
    print(
        f"outage_arrivals={len(outages)} outage_detected={sum(a.detected for a in outages)} "
        f"outage_in_bounds={in_bounds} outage_p95_error_s={_fmt(percentile(outage_errors, 95))} "
        f"outage_max_error_s={_fmt(max(outage_errors, default=None))} "
        f"first_fix_p95_error_s={_fmt(percentile(first_fix_errors, 95))}"
    )
    nights = sum(w.overnight_stays for w in weeks)
    closed = sum(w.overnight_closed for w in weeks)
    night_errors = [abs(e) for w in weeks for e in w.overnight_departure_errors_s]
    after = sum(w.visits_after_interruption for w in weeks)
    after_found = sum(w.detected_after_interruption for w in weeks)
    print(
        f"overnight_stays={nights} overnight_closed={closed} "
        f"start_of_day_listed={sum(w.start_of_day_listed for w in weeks)} "
        f"overnight_departure_p95_error_s={_fmt(percentile(night_errors, 95))} "
        f"visits_after_interruption={after} detected_after_interruption={after_found} "
        f"reconciled={sum(w.reconciled for w in weeks)} "
        f"tracker_errors={sum(w.tracker_errors for w in weeks)}"
    )

    detector = pooled(r.detector for r in results)
    baseline = pooled(r.baseline for r in results)
    departures = detector.of_kind("departure")
    baseline_departures = baseline.of_kind("departure").p95_error_s
    outage_p95 = percentile(outage_errors, 95)
    first_fix_p95 = percentile(first_fix_errors, 95)
    print(
        f"visits={sum(r.visits for r in results)} {_figures(detector)} "
        f"departure_p95_error_s={_fmt(departures.p95_error_s)} "
        f"outage_in_bounds={in_bounds} outage_arrivals={len(outages)} "
        f"outage_p95_error_s={_fmt(percentile(outage_errors, 95))} "
        f"overnight_closed={closed} overnight_stays={nights} "
        f"tracker_errors={sum(w.tracker_errors for w in weeks)} "
        f"{_figures(baseline, 'baseline_')} "
        f"baseline_departure_p95_error_s={_fmt(baseline.of_kind('departure').p95_error_s)} "
        f"baseline_outage_p95_error_s={_fmt(percentile(first_fix_errors, 95))} "
        f"days={len(results)} "
        f"events={detector.true_events} detections={detector.detections} "
        f"fp={len(detector.false_positives)} fn={len(detector.false_negatives)} "
        f"max_error_s={_fmt(detector.max_error_s)} "
        f"departure_error_ratio={_ratio(baseline_departures, departures.p95_error_s)} "
        f"outage_error_ratio={_ratio(first_fix_p95, outage_p95)} elapsed_s={elapsed:.1f}"
    )


def _ratio(baseline: float | None, measured: float | None) -> str:
    """How many times smaller the measured error is than the baseline's."""
    if baseline is None or not measured:
        return "nan"
    return f"{baseline / measured:.1f}"


if __name__ == "__main__":
    main()
