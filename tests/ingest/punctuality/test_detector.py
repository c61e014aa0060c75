from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from ingest.itinerary import Itinerary, Stop
from ingest.punctuality.detector import (
    ArrivalDetector,
    DetectorConfig,
    Fix,
    StopArrival,
    StopDeparture,
    StopEvent,
    detect_stops,
)
from protocol.models import GpsSample
from tests.ingest.punctuality.tracks import Track, stop_at, to_local

T0 = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)
EDGE_M = 150.0 + 50.0  # default radius in these tests + default zone tolerance


def run(
    stops: list[Stop], fixes: list[Fix], config: DetectorConfig | None = None
) -> list[StopEvent]:
    detector = ArrivalDetector("vexin-01", stops, config)
    return detector.feed_many(fixes) + detector.flush()


def last_inside(track: Track, before: datetime | None = None) -> datetime:
    return max(
        f.t
        for f in track.fixes
        if track.distance_m(f) <= EDGE_M and (before is None or f.t < before)
    )


def test_arrival_is_when_rest_began_and_departure_when_it_set_off() -> None:
    stop = stop_at()
    track = Track(stop, T0).drive_to(20, -30)
    rest_began = track.now
    track.rest(600)
    set_off = track.now - timedelta(seconds=1)  # the last fix at rest
    track.drive_to(0, 1500)

    events = run([stop], track.fixes)

    assert [type(e) for e in events] == [StopArrival, StopDeparture]
    arrival, departure = events
    assert (arrival.vehicle, arrival.stop, arrival.t) == ("vexin-01", "place", rest_began)
    assert arrival.evidence.first_fix == rest_began
    assert arrival.evidence.fixes >= 121
    assert arrival.evidence.max_distance_m < 60
    assert departure.stop == "place"
    # Not the last fix inside the zone, which lags by the drive out of it.
    assert departure.t == set_off
    assert last_inside(track) - set_off >= timedelta(seconds=15)
    assert departure.evidence.max_distance_m > EDGE_M + 25
    assert departure.evidence.fixes >= 3


def test_arrival_fires_only_once_the_dwell_has_passed() -> None:
    stop = stop_at()
    track = Track(stop, T0).drive_to(0, 0)
    rest_began = track.now
    track.rest(300)
    detector = ArrivalDetector("vexin-01", [stop], DetectorConfig(reorder_window_s=0))
    fired_at = None
    for fix in track.fixes:
        if detector.feed(fix):
            fired_at = fix.t
    assert fired_at == rest_began + timedelta(seconds=120)
    assert detector.current_stop == "place"


def test_drive_by_is_not_an_arrival() -> None:
    stop = stop_at()
    fast = Track(stop, T0, at=(0, -1500)).drive_to(0, 1500, speed_mps=12)
    crawl = Track(stop, T0, at=(-600, 0)).drive_to(600, 0, speed_mps=2.5)
    assert run([stop], fast.fixes) == []
    assert run([stop], crawl.fixes) == []


def test_traffic_light_at_the_zone_edge_is_not_an_arrival() -> None:
    stop = stop_at()
    track = Track(stop, T0, at=(-1500, -190)).drive_to(0, -190).rest(45).drive_to(1500, -190)
    assert track.distance_m(track.fixes[0]) > EDGE_M
    assert run([stop], track.fixes) == []


@pytest.mark.parametrize(("rest_fixes", "arrives"), [(120, False), (121, True)])
def test_dwell_boundary(rest_fixes: int, arrives: bool) -> None:
    # n fixes at 1 Hz span n - 1 seconds: 121 fixes are the first to reach 120 s.
    stop = stop_at()
    track = Track(stop, T0).drive_to(0, -100).rest(rest_fixes).drive_to(1500, -100)
    arrivals = [e for e in run([stop], track.fixes) if isinstance(e, StopArrival)]
    assert len(arrivals) == (1 if arrives else 0)


@pytest.mark.parametrize(
    ("north", "tolerance", "arrives"),
    [(-180.0, 50.0, True), (-260.0, 50.0, False), (-180.0, 0.0, False), (-130.0, 0.0, True)],
)
def test_parking_just_outside_the_radius_counts_within_the_tolerance(
    north: float, tolerance: float, arrives: bool
) -> None:
    stop = stop_at()
    track = Track(stop, T0, at=(-1500, north)).drive_to(0, north).rest(600)
    events = run([stop], track.fixes, DetectorConfig(zone_tolerance_m=tolerance))
    assert len(events) == (1 if arrives else 0)


def test_jitter_and_stray_fixes_at_rest_change_nothing() -> None:
    stop = stop_at()
    track = Track(stop, T0, noise_m=6.0).drive_to(20, -30)
    rest_began = track.now
    track.rest(100).spike(60, 0).rest(100).spike(-80, 30).spike(-80, 30).rest(400)
    # Two far multipath fixes in a row while parked: fewer than the fixes needed to leave.
    track.spike(0, 800).spike(0, 820).rest(300)
    parked_until = track.now
    track.drive_to(0, 2000)

    events = run([stop], track.fixes)

    assert [type(e) for e in events] == [StopArrival, StopDeparture]
    assert events[0].t == rest_began
    assert events[1].t >= parked_until - timedelta(seconds=1)


def test_outage_while_at_rest_continues_the_stay() -> None:
    stop = stop_at()
    track = Track(stop, T0).drive_to(10, 10)
    rest_began = track.now
    # 60 s of fixes, 20 min without any, then 60 s more at the same place: one stay.
    track.rest(60).gap(1200).rest(60)
    set_off = track.now - timedelta(seconds=1)
    track.drive_to(0, 1500)

    events = run([stop], track.fixes)

    assert [type(e) for e in events] == [StopArrival, StopDeparture]
    assert events[0].t == rest_began
    assert isinstance(events[0], StopArrival) and not events[0].estimated
    assert events[1].t == set_off


def test_leaving_during_an_outage_departs_at_the_last_fix_inside() -> None:
    stop = stop_at()
    track = Track(stop, T0).drive_to(10, 10).rest(600)
    last_seen_inside = track.now - timedelta(seconds=1)
    track.gap(900, moved_to=(0, 3000)).drive_to(0, 5000)

    events = run([stop], track.fixes)

    assert [type(e) for e in events] == [StopArrival, StopDeparture]
    assert events[1].t == last_seen_inside


def test_manoeuvre_in_the_car_park_is_not_a_departure() -> None:
    stop = stop_at()
    track = Track(stop, T0).drive_to(0, -120).rest(300)
    manoeuvre_began = track.now
    # Out past the edge for about half a minute to turn round, then back to park.
    track.drive_to(0, -245, speed_mps=2).rest(15).drive_to(0, -120, speed_mps=2).rest(300)
    assert max(track.distance_m(f) for f in track.fixes if f.t >= manoeuvre_began) > EDGE_M + 25
    left_at = track.now
    track.drive_to(1500, -120)

    events = run([stop], track.fixes)

    assert [type(e) for e in events] == [StopArrival, StopDeparture]
    assert events[1].t >= left_at - timedelta(seconds=1)


def test_arriving_early_inside_the_zone_is_the_arrival() -> None:
    stop = stop_at()
    track = Track(stop, T0).drive_to(0, 40)
    rest_began = track.now
    track.rest(3600)
    assert run([stop], track.fixes)[0].t == rest_began


def test_waiting_outside_the_zone_arrives_when_it_comes_to_rest_inside() -> None:
    stop = stop_at()
    track = Track(stop, T0, at=(0, -3000)).drive_to(0, -450).rest(1200).drive_to(0, -20)
    rest_began = track.now
    track.rest(300)

    events = run([stop], track.fixes)

    assert len(events) == 1
    assert isinstance(events[0], StopArrival)
    assert events[0].t == rest_began


def test_imprecise_fixes_are_ignored() -> None:
    stop = stop_at()
    track = Track(stop, T0).drive_to(0, 0).imprecise(600, hdop=25.0).drive_to(0, 1500)
    detector = ArrivalDetector("vexin-01", [stop])
    assert detector.feed_many(track.fixes) + detector.flush() == []
    assert detector.imprecise_fixes == 600


def _stay_track(seed: int = 1) -> Track:
    stop = stop_at()
    return Track(stop, T0, seed=seed).drive_to(20, -30).rest(600).drive_to(0, 1500)


def test_fixes_reordered_within_the_window_give_the_same_events() -> None:
    track = _stay_track()
    in_order = run([track.origin], track.fixes)
    rng = random.Random(7)
    shuffled: list[Fix] = []
    for i in range(0, len(track.fixes), 20):
        block = track.fixes[i : i + 20]
        rng.shuffle(block)
        shuffled.extend(block)
    assert shuffled != track.fixes

    detector = ArrivalDetector("vexin-01", [track.origin], DetectorConfig(reorder_window_s=30))
    events = detector.feed_many(shuffled) + detector.flush()

    assert len(in_order) == 2
    assert events == in_order
    assert detector.late_fixes == 0


def test_late_and_duplicate_fixes_are_counted_and_dropped() -> None:
    track = _stay_track()
    in_order = run([track.origin], track.fixes)
    detector = ArrivalDetector("vexin-01", [track.origin], DetectorConfig(reorder_window_s=10))
    events: list[StopEvent] = []
    for fix in track.fixes:
        events += detector.feed(fix)
        events += detector.feed(fix)
    # A fix from five minutes ago, after newer ones were processed, is too late to use.
    stale = Fix(track.fixes[-1].t - timedelta(minutes=5, seconds=0.5), 49.0, 1.0, 0.0)
    events += detector.feed(stale)
    events += detector.flush()

    assert events == in_order
    assert detector.duplicate_fixes == len(track.fixes)
    assert detector.late_fixes == 1


def test_re_derivation_from_any_order_matches_in_order_detection() -> None:
    track = _stay_track(seed=3)
    in_order = run([track.origin], track.fixes)
    everything = track.fixes + track.fixes[:50]
    random.Random(11).shuffle(everything)
    assert detect_stops("vexin-01", [track.origin], everything) == in_order


def test_a_day_on_the_real_itinerary(itinerary: Itinerary) -> None:
    gisors, vesly, hacqueville = (itinerary.stop(s) for s in ("gisors", "vesly", "hacqueville"))
    track = Track(gisors, T0, at=(0, 0)).rest(300)
    stays = []
    for stop in (vesly, hacqueville, gisors):
        track.drive_to(*to_local(gisors, stop.lat, stop.lon), speed_mps=15)
        stays.append((stop.id, track.now))
        track.rest(900)
    detector = ArrivalDetector("vexin-01", itinerary.stops)
    events = detector.feed_many(track.fixes) + detector.flush()

    arrivals = [(e.stop, e.t) for e in events if isinstance(e, StopArrival)]
    departures = [e.stop for e in events if isinstance(e, StopDeparture)]
    assert arrivals == [("gisors", T0), *stays]
    assert departures == ["gisors", "vesly", "hacqueville"]
    assert detector.current_stop == "gisors"


def test_fix_from_gps_sample() -> None:
    t = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    no_fix = GpsSample(t=t, lat=0.0, lon=0.0, fix_mode=1, quality=0)
    good = GpsSample(t=t, lat=49.2, lon=1.6, speed_mps=3.5, fix_mode=3, hdop=1.2)
    assert Fix.from_sample(no_fix) is None
    assert Fix.from_sample(good) == Fix(t, 49.2, 1.6, 3.5, 1.2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"t": datetime(2026, 1, 1, 12, 0)}, "no time zone"),
        ({"lat": 91.0}, "latitude"),
        ({"lon": -181.0}, "longitude"),
        ({"speed_mps": -1.0}, "speed"),
        ({"hdop": math.nan}, "hdop"),
    ],
)
def test_bad_fix_is_rejected(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {"t": T0, "lat": 49.0, "lon": 1.0, "speed_mps": 0.0, "hdop": 1.0}
    with pytest.raises(ValueError, match=message):
        Fix(**{**fields, **kwargs})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dwell_s": 0.0}, "dwell_s"),
        ({"rest_radius_m": math.inf}, "rest_radius_m"),
        ({"zone_tolerance_m": -1.0}, "zone_tolerance_m"),
        ({"exit_confirm_fixes": 0}, "exit_confirm_fixes"),
    ],
)
def test_bad_config_is_rejected(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DetectorConfig(**kwargs)  # type: ignore[arg-type]


def test_duplicate_stops_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate stop"):
        ArrivalDetector("vexin-01", [stop_at(), stop_at()])


def test_a_wait_at_a_junction_on_the_way_out_does_not_delay_the_departure() -> None:
    stop = stop_at(radius_m=300.0)
    track = Track(stop, T0).drive_to(0, 0).rest(900)
    set_off = track.now - timedelta(seconds=1)
    # Out of the car park, then 40 s at a give-way line still well inside the zone.
    track.drive_to(0, 150, speed_mps=4).rest(40).drive_to(0, 2000)

    events = run([stop], track.fixes)

    assert [type(e) for e in events] == [StopArrival, StopDeparture]
    assert events[1].t == set_off


def _approach_through_outage(
    speed_mps: float, outage_s: int, lost_before_s: int, seed: int = 3
) -> tuple[Track, datetime]:
    """A bus driving at ``speed_mps`` towards the stop; the fixes stop ``lost_before_s``
    before it comes to rest at the centre and resume ``outage_s`` after they stopped."""
    stop = stop_at()
    start = (0.0, -speed_mps * (lost_before_s + 300))
    track = Track(stop, T0, at=start, seed=seed).drive_to(
        0, -speed_mps * lost_before_s, speed_mps=speed_mps
    )
    lost_at = track.now
    arrived = lost_at + timedelta(seconds=lost_before_s)
    track.gap(outage_s, moved_to=(0.0, 0.0)).rest(600)
    return track, arrived


@pytest.mark.parametrize(
    ("speed_mps", "outage_s", "lost_before_s"),
    [(13.9, 600, 120), (8.3, 300, 60), (22.0, 600, 240), (13.9, 180, 20), (8.3, 600, 420)],
)
def test_arrival_inside_an_outage_is_estimated_within_bounds(
    speed_mps: float, outage_s: int, lost_before_s: int
) -> None:
    track, arrived = _approach_through_outage(speed_mps, outage_s, lost_before_s)
    events = run([stop_at()], track.fixes)

    arrival = events[0]
    assert isinstance(arrival, StopArrival) and arrival.estimated
    assert arrival.earliest is not None and arrival.latest is not None
    first_after = min(f.t for f in track.fixes if track.distance_m(f) < 20)
    # The bounds hold the true arrival; the latest is the first fix after the gap.
    assert arrival.earliest <= arrived <= arrival.latest == first_after
    assert arrival.earliest <= arrival.t <= arrival.latest
    # Not the first fix after the gap: the estimate allows for roads that wind (a quarter
    # longer than the straight line), which this straight track does not.
    assert abs((arrival.t - arrived).total_seconds()) <= 0.3 * lost_before_s + 10
    assert (first_after - arrived).total_seconds() > 0.3 * lost_before_s + 10


def test_a_short_gap_at_rest_or_while_driving_gives_an_observed_arrival() -> None:
    stop = stop_at()
    track = Track(stop, T0).drive_to(0, -100).gap(10, moved_to=(0, 0)).drive_to(0, 0)
    rest_began = track.now
    track.rest(300)
    (arrival,) = run([stop], track.fixes)
    assert isinstance(arrival, StopArrival)
    assert (arrival.t, arrival.earliest, arrival.latest) == (rest_began, None, None)
