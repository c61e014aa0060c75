"""The arrival detector, with its production configuration, on labelled scenario days: a
guard on a small subset of what ``bench/punctuality_accuracy.py`` measures."""

from __future__ import annotations

from ingest.itinerary import Itinerary
from ingest.punctuality.detector import DetectorConfig, detect_stops
from simulators.accuracy import pooled, score
from simulators.labelled_days import AS_WRITTEN, arrivals_in_outages, labelled_days

# The two days with decoys: a drive-by of a stop, a red light at a zone's edge.
SUBSET = ["vexin-drive-by", "vexin-traffic-light"]


def test_the_detector_meets_its_targets_on_the_decoy_days(itinerary: Itinerary) -> None:
    days = list(labelled_days(itinerary, SUBSET, [AS_WRITTEN], every_weekday=False))
    cards = [
        score(
            day.true_events,
            detect_stops(day.vehicle, itinerary.stops, day.fixes(), DetectorConfig()),
            day.decoys,
        )
        for day in days
    ]
    total = pooled(cards)
    assert sum(len(day.decoys) for day in days) == 2
    assert total.true_events == 12
    assert total.decoy_hits == 0
    assert total.precision >= 0.99
    assert total.recall >= 0.99
    assert total.p95_error_s is not None and total.p95_error_s <= 30.0
    # Departures are when the bus set off, not when it crossed the zone's edge.
    departures = total.of_kind("departure")
    assert len(departures.matched) >= 5
    assert departures.p95_error_s is not None and departures.p95_error_s <= 15.0


def test_arrivals_inside_outages_are_estimated_within_their_bounds(itinerary: Itinerary) -> None:
    days = list(arrivals_in_outages(itinerary, ["vexin-monday-on-time"], [AS_WRITTEN]))
    checked = 0
    for day in days:
        detected = detect_stops(day.vehicle, itinerary.stops, day.fixes(), DetectorConfig())
        card = score(day.true_events, detected, day.decoys)
        for pair in card.matched:
            if pair.truth.in_outage and pair.truth.kind == "arrival":
                checked += 1
                assert pair.detected.bounds_hold(pair.truth.t), (day.label, pair)
                assert abs(pair.error_s) <= 60.0, (day.label, pair.error_s)
    assert len(days) == 2 and checked == 2
