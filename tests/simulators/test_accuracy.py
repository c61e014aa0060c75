"""Scoring detected arrivals and departures against the truth, on hand-made events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingest.punctuality.detector import Evidence, StopArrival, StopDeparture
from simulators.accuracy import (
    Decoy,
    DetectedEvent,
    EventKind,
    Scorecard,
    TrueEvent,
    percentile,
    pooled,
    score,
)

T0 = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
BUS = "vexin-01"


def at(minutes: float, seconds: float = 0.0) -> datetime:
    return T0 + timedelta(minutes=minutes, seconds=seconds)


def true(stop: str, kind: EventKind, t: datetime, censored: bool = False) -> TrueEvent:
    return TrueEvent(BUS, stop, kind, t, censored)


def seen(stop: str, kind: EventKind, t: datetime, vehicle: str = BUS) -> DetectedEvent:
    return DetectedEvent(vehicle, stop, kind, t)


DAY = [
    true("vesly", "arrival", at(57)),
    true("vesly", "departure", at(230)),
    true("hacqueville", "arrival", at(297)),
    true("hacqueville", "departure", at(480)),
]


def test_a_perfect_detector_scores_one() -> None:
    card = score(DAY, [seen(e.stop, e.kind, e.t) for e in DAY])
    assert (card.precision, card.recall, card.p95_error_s) == (1.0, 1.0, 0.0)
    assert len(card.matched) == 4
    assert not card.false_positives and not card.false_negatives


def test_a_detection_with_no_true_event_is_a_false_positive() -> None:
    detected = [seen(e.stop, e.kind, e.t) for e in DAY]
    detected.append(seen("bezu-saint-eloi", "arrival", at(500)))
    card = score(DAY, detected)
    assert card.precision == pytest.approx(4 / 5)
    assert card.recall == 1.0
    (fp,) = card.false_positives
    assert fp.detected.stop == "bezu-saint-eloi" and fp.reason == "unmatched"


def test_a_true_event_with_no_detection_is_a_false_negative() -> None:
    card = score(DAY, [seen(e.stop, e.kind, e.t) for e in DAY[:3]])
    assert card.precision == 1.0
    assert card.recall == pytest.approx(3 / 4)
    assert card.false_negatives == (DAY[3],)


def test_errors_are_detected_minus_true_and_p95_is_the_nearest_rank() -> None:
    offsets = [5.0, -12.0, 30.0, -3.0]
    detected = [
        seen(e.stop, e.kind, e.t + timedelta(seconds=o)) for e, o in zip(DAY, offsets, strict=True)
    ]
    card = score(DAY, detected)
    assert sorted(p.error_s for p in card.matched) == sorted(offsets)
    assert card.p95_error_s == 30.0
    assert card.max_error_s == 30.0
    assert percentile([float(i) for i in range(1, 101)], 95.0) == 95.0
    assert percentile([1.0, 2.0], 50.0) == 1.0
    assert percentile([], 95.0) is None


def test_a_detection_beyond_the_tolerance_is_both_a_miss_and_a_false_positive() -> None:
    late = seen("vesly", "arrival", at(57 + 11))
    card = score(DAY[:1], [late], tolerance=timedelta(minutes=10))
    assert card.false_negatives == tuple(DAY[:1])
    assert [fp.detected for fp in card.false_positives] == [late]
    on_edge = score(DAY[:1], [seen("vesly", "arrival", at(67))], tolerance=timedelta(minutes=10))
    assert len(on_edge.matched) == 1


def test_matching_needs_the_same_vehicle_stop_and_kind() -> None:
    t = DAY[0].t
    wrong = [
        seen("vesly", "arrival", t, vehicle="caux-01"),
        seen("hacqueville", "arrival", t),
        seen("vesly", "departure", t),
    ]
    card = score(DAY[:1], wrong)
    assert not card.matched
    assert len(card.false_positives) == 3
    assert card.false_negatives == tuple(DAY[:1])


def test_each_true_event_takes_the_closest_detection_once() -> None:
    truth = [true("vesly", "arrival", at(57))]
    near, far = seen("vesly", "arrival", at(57, 20)), seen("vesly", "arrival", at(55))
    card = score(truth, [far, near])
    (pair,) = card.matched
    assert pair.detected == near
    assert [fp.detected for fp in card.false_positives] == [far]


def test_two_close_true_events_are_not_both_matched_to_one_detection() -> None:
    truth = [true("vesly", "arrival", at(0)), true("vesly", "arrival", at(3))]
    card = score(truth, [seen("vesly", "arrival", at(2))])
    assert [p.truth for p in card.matched] == [truth[1]]
    assert card.false_negatives == (truth[0],)


def test_an_arrival_detected_during_a_red_light_is_false_even_near_the_true_arrival() -> None:
    light = Decoy(BUS, "hebecourt", "rest_in_zone", at(56), at(56, 45))
    truth = [true("hebecourt", "arrival", at(57, 30))]
    fooled = score(truth, [seen("hebecourt", "arrival", at(55, 59))], [light])
    assert fooled.decoy_hits == 1
    assert fooled.false_positives[0].decoy == light
    assert fooled.false_negatives == tuple(truth)
    right = score(truth, [seen("hebecourt", "arrival", at(57, 31))], [light])
    assert (right.precision, right.recall, right.decoy_hits) == (1.0, 1.0, 0)


def test_a_drive_by_detected_as_a_stay_is_two_false_positives() -> None:
    passage = Decoy(BUS, "bezu-saint-eloi", "drive_by", at(600), at(600, 36))
    detected = [
        seen("bezu-saint-eloi", "arrival", at(600, 5)),
        seen("bezu-saint-eloi", "departure", at(600, 30)),
    ]
    card = score([], detected, [passage])
    assert card.precision == 0.0 and card.recall == 1.0
    assert [fp.reason for fp in card.false_positives] == ["decoy", "unmatched"]


def test_a_censored_true_event_is_neither_counted_nor_missed() -> None:
    parked = true("gisors", "arrival", at(0), censored=True)
    card = score([parked], [seen("gisors", "arrival", at(0))])
    assert card.detections == 0 and card.true_events == 0
    assert len(card.censored) == 1
    unseen = score([parked], [])
    assert not unseen.false_negatives and unseen.recall == 1.0


def test_detector_events_are_scored_as_they_come() -> None:
    evidence = Evidence(120, 4.0, at(57), at(59))
    events = [
        StopArrival(BUS, "vesly", at(57), evidence),
        StopDeparture(BUS, "vesly", at(230, 6), evidence),
    ]
    card = score(DAY[:2], events)
    assert card.recall == 1.0
    assert sorted(p.error_s for p in card.matched) == [0.0, 6.0]


def test_scorecards_pool() -> None:
    one = score(DAY[:2], [seen(e.stop, e.kind, e.t) for e in DAY[:2]])
    two = score(DAY[2:], [seen("morgny", "arrival", at(300))])
    total = pooled([one, two])
    assert total == one + two
    assert (total.true_events, total.detections, len(total.matched)) == (4, 3, 2)
    assert pooled([]) == Scorecard()
    assert Scorecard().precision == 1.0 and Scorecard().p95_error_s is None


def test_bad_input_is_refused_clearly() -> None:
    naive = datetime(2026, 11, 16, 9, 0)
    with pytest.raises(ValueError, match=r"true arrival at vesly.*no time zone"):
        TrueEvent(BUS, "vesly", "arrival", naive)
    with pytest.raises(ValueError, match=r"detected departure at vesly.*no time zone"):
        DetectedEvent(BUS, "vesly", "departure", naive)
    with pytest.raises(ValueError, match=r"drive_by at bezu.*before start"):
        Decoy(BUS, "bezu", "drive_by", at(10), at(5))
    with pytest.raises(ValueError, match=r"tolerance .* is negative"):
        score(DAY, [], tolerance=timedelta(seconds=-1))
    with pytest.raises(ValueError, match=r"decoy slack .* is negative"):
        score(DAY, [], decoy_slack=timedelta(seconds=-1))
    with pytest.raises(ValueError, match="percentile 0"):
        percentile([1.0], 0.0)
