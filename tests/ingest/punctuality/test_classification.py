from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from ingest.itinerary import Itinerary
from ingest.punctuality.classification import (
    PunctualityThresholds,
    Stay,
    classify_visits,
    punctuality_of,
    reconciled_stays,
    stays_from_events,
)
from ingest.punctuality.detector import (
    ArrivalDetector,
    Evidence,
    StopArrival,
    StopDeparture,
    StopEvent,
)
from ingest.punctuality.schedule import (
    ScheduleRules,
    Visit,
    VisitCancellation,
    expand_schedule,
)
from tests.ingest.punctuality.tracks import Track, to_local

MONDAY = date(2026, 11, 23)
VESLY = "vexin-01:2026-11-23:vesly"
HACQUEVILLE = "vexin-01:2026-11-23:hacqueville"
VESLY_AT = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # 09:00 local
HACQUEVILLE_AT = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
END_OF_DAY = datetime(2026, 11, 23, 23, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
US = timedelta(microseconds=1)


def _evidence(t: datetime) -> Evidence:
    return Evidence(fixes=121, max_distance_m=20.0, first_fix=t, last_fix=t)


def arrive(stop: str, t: datetime, vehicle: str = "vexin-01") -> StopArrival:
    return StopArrival(vehicle, stop, t, _evidence(t))


def depart(stop: str, t: datetime, vehicle: str = "vexin-01") -> StopDeparture:
    return StopDeparture(vehicle, stop, t, _evidence(t))


def monday(itinerary: Itinerary, rules: ScheduleRules | None = None) -> list[Visit]:
    return expand_schedule(itinerary, MONDAY, MONDAY, rules, vehicles=["vexin-01"])


@pytest.mark.parametrize(
    ("delay", "expected"),
    [
        (-5 * MINUTE - US, "early"),
        (-5 * MINUTE, "on_time"),
        (timedelta(0), "on_time"),
        (5 * MINUTE, "on_time"),
        (5 * MINUTE + US, "late"),
        (-3 * timedelta(hours=1), "early"),
    ],
)
def test_default_thresholds_at_their_boundaries(delay: timedelta, expected: str) -> None:
    assert punctuality_of(delay, PunctualityThresholds()) == expected


@pytest.mark.parametrize(
    ("delay", "expected"),
    [
        (-2 * MINUTE - US, "early"),
        (-2 * MINUTE, "on_time"),
        (10 * MINUTE, "on_time"),
        (10 * MINUTE + US, "late"),
    ],
)
def test_configured_thresholds_at_their_boundaries(delay: timedelta, expected: str) -> None:
    thresholds = PunctualityThresholds(on_time_from=-2 * MINUTE, on_time_until=10 * MINUTE)
    assert punctuality_of(delay, thresholds) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"on_time_from": MINUTE}, "on-time band"),
        ({"on_time_until": -MINUTE}, "on-time band"),
        ({"match_before": -MINUTE}, "must not be negative"),
        ({"match_before": 2 * MINUTE}, "must cover the on-time band"),
    ],
)
def test_inconsistent_thresholds_are_rejected(kwargs: dict[str, timedelta], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PunctualityThresholds(**kwargs)


def test_a_monday_on_time_then_late(itinerary: Itinerary) -> None:
    events: list[StopEvent] = [
        arrive("vesly", VESLY_AT + 4 * MINUTE),
        depart("vesly", VESLY_AT + timedelta(hours=3, minutes=2)),
        arrive("hacqueville", HACQUEVILLE_AT + 20 * MINUTE),
        depart("hacqueville", HACQUEVILLE_AT + timedelta(hours=3)),
        arrive("gisors", datetime(2026, 11, 23, 17, 0, tzinfo=UTC)),  # back at the depot
    ]
    report = classify_visits(monday(itinerary), events, as_of=END_OF_DAY)

    vesly = report.outcome(VESLY)
    assert vesly.status == "on_time"
    assert vesly.arrival_delay == 4 * MINUTE
    assert vesly.departure_delay == 2 * MINUTE
    late = report.outcome(HACQUEVILLE)
    assert (late.status, late.arrival_delay, late.departure_delay) == (
        "late",
        20 * MINUTE,
        timedelta(0),
    )
    assert report.unscheduled == (
        Stay("vexin-01", "gisors", datetime(2026, 11, 23, 17, 0, tzinfo=UTC)),
    )


def test_no_arrival_is_pending_until_the_window_closes_then_missed(itinerary: Itinerary) -> None:
    events = [arrive("vesly", VESLY_AT - 30 * MINUTE)]
    during = classify_visits(monday(itinerary), events, as_of=HACQUEVILLE_AT + 3 * MINUTE)
    assert during.outcome(VESLY).status == "early"
    assert during.outcome(VESLY).arrival_delay == -30 * MINUTE
    assert during.outcome(VESLY).departure is None
    assert during.outcome(HACQUEVILLE).status == "pending"

    closes = HACQUEVILLE_AT + timedelta(hours=3)
    assert classify_visits(monday(itinerary), events, as_of=closes - US).outcome(
        HACQUEVILLE
    ).status == ("pending")
    after = classify_visits(monday(itinerary), events, as_of=closes)
    assert after.outcome(HACQUEVILLE).status == "missed"
    assert after.outcome(HACQUEVILLE).arrival is None


def test_cancelled_visit_stays_cancelled_and_a_stay_there_is_unscheduled(
    itinerary: Itinerary,
) -> None:
    rules = ScheduleRules(visit_cancellations=(VisitCancellation(VESLY, "no GP"),))
    events = [arrive("vesly", VESLY_AT), depart("vesly", VESLY_AT + timedelta(hours=1))]
    report = classify_visits(monday(itinerary, rules), events, as_of=END_OF_DAY)
    assert report.outcome(VESLY).status == "cancelled"
    assert report.unscheduled == (
        Stay("vexin-01", "vesly", VESLY_AT, VESLY_AT + timedelta(hours=1)),
    )


@pytest.mark.parametrize(
    ("arrival", "matched"),
    [
        (VESLY_AT - timedelta(hours=2), True),
        (VESLY_AT - timedelta(hours=2) - US, False),
        (VESLY_AT + timedelta(hours=3), True),  # the scheduled departure itself
        (VESLY_AT + timedelta(hours=3) + US, False),
    ],
)
def test_matching_window_boundaries(itinerary: Itinerary, arrival: datetime, matched: bool) -> None:
    report = classify_visits(monday(itinerary), [arrive("vesly", arrival)], as_of=END_OF_DAY)
    assert (report.outcome(VESLY).status != "missed") is matched
    assert len(report.unscheduled) == (0 if matched else 1)


def test_other_vehicle_or_stop_does_not_match(itinerary: Itinerary) -> None:
    events = [arrive("vesly", VESLY_AT, vehicle="caux-01"), arrive("gisors", VESLY_AT)]
    report = classify_visits(monday(itinerary), events, as_of=END_OF_DAY)
    assert report.outcome(VESLY).status == "missed"
    assert len(report.unscheduled) == 2


def test_closest_stay_wins_and_one_stay_serves_one_visit(itinerary: Itinerary) -> None:
    events = [
        arrive("vesly", VESLY_AT - 50 * MINUTE),
        depart("vesly", VESLY_AT - 40 * MINUTE),
        arrive("vesly", VESLY_AT + 2 * MINUTE),
    ]
    report = classify_visits(monday(itinerary), events, as_of=END_OF_DAY)
    assert report.outcome(VESLY).arrival == VESLY_AT + 2 * MINUTE
    assert report.outcome(VESLY).status == "on_time"
    assert [s.arrival for s in report.unscheduled] == [VESLY_AT - 50 * MINUTE]


def test_stays_pair_arrivals_with_departures() -> None:
    t = VESLY_AT
    stays = stays_from_events(
        [
            depart("gisors", t - 60 * MINUTE),  # began before these events: skipped
            depart("vesly", t + 60 * MINUTE),
            arrive("vesly", t),
            arrive("hacqueville", t + 120 * MINUTE),
        ]
    )
    assert stays == [
        Stay("vexin-01", "vesly", t, t + 60 * MINUTE),
        Stay("vexin-01", "hacqueville", t + 120 * MINUTE),
    ]


def test_contradicting_events_are_reconciled_not_raised(itinerary: Itinerary) -> None:
    t = VESLY_AT
    # The same stay seen by two runs: the earlier arrival stands.
    stays, reconciled = reconciled_stays(
        [arrive("vesly", t), arrive("vesly", t + 9 * MINUTE), depart("vesly", t + 60 * MINUTE)]
    )
    assert stays == [Stay("vexin-01", "vesly", t, t + 60 * MINUTE)]
    assert [(r.kind, r.stop, r.t, r.open_stop) for r in reconciled] == [
        ("arrival", "vesly", t + 9 * MINUTE, "vesly")
    ]
    # An arrival elsewhere closes the open stay, its departure unknown; a departure from
    # another stop than the open stay's is dropped.
    stays, reconciled = reconciled_stays(
        [
            arrive("vesly", t),
            depart("gisors", t + MINUTE),
            arrive("gisors", t + 90 * MINUTE),
            depart("gisors", t + 99 * MINUTE),
        ]
    )
    assert stays == [
        Stay("vexin-01", "vesly", t, None),
        Stay("vexin-01", "gisors", t + 90 * MINUTE, t + 99 * MINUTE),
    ]
    assert [r.kind for r in reconciled] == ["departure", "arrival"]
    # Classified, the report says what was reconciled, and the visit has its stay.
    report = classify_visits(
        monday(itinerary),
        [arrive("vesly", t), arrive("vesly", t + MINUTE), depart("vesly", t + 180 * MINUTE)],
        as_of=END_OF_DAY,
    )
    assert report.outcome(VESLY).arrival == t
    assert len(report.reconciled) == 1


def test_bad_classification_arguments_are_rejected(itinerary: Itinerary) -> None:
    with pytest.raises(ValueError, match="after as_of"):
        classify_visits(monday(itinerary), [arrive("vesly", END_OF_DAY + US)], as_of=END_OF_DAY)
    with pytest.raises(ValueError, match="no time zone"):
        classify_visits(monday(itinerary), [], as_of=datetime(2026, 11, 23, 23, 0))
    visits = monday(itinerary)
    with pytest.raises(ValueError, match="duplicate visit ids"):
        classify_visits(visits + visits[:1], [], as_of=END_OF_DAY)


def test_detected_track_classified_against_the_timetable(itinerary: Itinerary) -> None:
    """From fixes to outcomes: 08:52 at Vesly (early by 8 min), 14:03 at Hacqueville."""
    gisors, vesly, hacqueville = (itinerary.stop(s) for s in ("gisors", "vesly", "hacqueville"))
    start = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)
    track = Track(gisors, start, at=(0, 0), seed=5)
    track.drive_to(*to_local(gisors, vesly.lat, vesly.lon), speed_mps=15)
    track.gap(int((VESLY_AT - 8 * MINUTE - track.now).total_seconds()))
    vesly_arrival = track.now
    track.rest(600).gap(3 * 3600 - 600 + 8 * 60)
    track.drive_to(*to_local(gisors, hacqueville.lat, hacqueville.lon), speed_mps=15)
    track.gap(int((HACQUEVILLE_AT + 3 * MINUTE - track.now).total_seconds()))
    hacqueville_arrival = track.now
    track.rest(900)

    detector = ArrivalDetector("vexin-01", itinerary.stops)
    events = detector.feed_many(track.fixes) + detector.flush()
    report = classify_visits(monday(itinerary), events, as_of=HACQUEVILLE_AT + timedelta(hours=1))

    assert report.outcome(VESLY).status == "early"
    assert report.outcome(VESLY).arrival == vesly_arrival
    assert report.outcome(VESLY).departure is not None
    assert report.outcome(HACQUEVILLE).status == "on_time"
    assert report.outcome(HACQUEVILLE).arrival == hacqueville_arrival
    assert report.outcome(HACQUEVILLE).departure is None
    assert report.unscheduled == ()
