"""Accuracy of the arrival detector on the labelled scenario days.

Every bundled scenario is replayed on each weekday of its week on which it fits, in a few
variants (other dates and noise seeds, an early crew, a receiver with a poorer sky view:
see ``simulators.labelled_days``). The receiver's fixes of each day go through
``detect_stops`` with the production detector configuration (``DetectorConfig()``), and
its arrivals and departures are compared with the true ones (``simulators.accuracy``:
same vehicle, stop and kind, within 10 min; a drive-by or a red light taken for an arrival
is a false positive). A naive detector (first fix inside the stop's circle = arrival, last
fix inside = departure) is measured on the same fixes as a baseline.

    .venv/bin/python bench/punctuality_accuracy.py [--jobs N] [--scenario NAME ...]

Prints one line per scenario, the detector's events more than 30 s off, its misses and
false detections, then the last line: ``visits=… precision=… recall=… p95_error_s=…``
(arrivals and departures together) followed by the baseline's figures and counts.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.geo import haversine_m
from ingest.itinerary import Itinerary, Stop, load_itinerary
from ingest.punctuality.detector import DetectorConfig, Fix, detect_stops
from simulators.accuracy import DetectedEvent, Scorecard, pooled, score
from simulators.cli import bundled_itinerary
from simulators.labelled_days import DEFAULT_VARIANTS, Variant, labelled_days
from simulators.scenario import bundled_scenarios

WORST_S = 30.0


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

    detector = pooled(r.detector for r in results)
    baseline = pooled(r.baseline for r in results)
    print(
        f"visits={sum(r.visits for r in results)} {_figures(detector)} "
        f"{_figures(baseline, 'baseline_')} days={len(results)} "
        f"events={detector.true_events} detections={detector.detections} "
        f"fp={len(detector.false_positives)} fn={len(detector.false_negatives)} "
        f"max_error_s={_fmt(detector.max_error_s)} elapsed_s={elapsed:.1f}"
    )


if __name__ == "__main__":
    main()
