from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ingest.footprint.distance import FixFilterConfig, Trip, filter_fixes
from tests.ingest.footprint.tracks import T0, fix, lat_after, meridian_track

# 0.1° of latitude: 6 371 008.8 m × 0.1 × π / 180.
TENTH_DEGREE_M = 11119.508


def test_straight_line_of_known_length_survives_every_kind_of_bad_fix() -> None:
    every = timedelta(seconds=10)
    good = [fix(T0 + i * every, 49.0 + i * 0.001, speed=11.1) for i in range(101)]
    now = good[-1].t
    bad = [
        # A spike 44 km off, between two good fixes.
        fix(T0 + timedelta(seconds=505), 49.5),
        # The same instants delivered again, once with a different position: the first
        # delivered is kept.
        fix(good[20].t, 49.0203),
        good[30],
        # Null island, no fix, and a fix from the future.
        fix(T0 + timedelta(seconds=303), 0.0, 0.0),
        fix(T0 + timedelta(seconds=404), 49.3, fix_mode=1),
        fix(now + timedelta(hours=2), 49.1),
    ]
    track = filter_fixes([*good, *bad], now=now)

    assert track.distance_m == pytest.approx(TENTH_DEGREE_M, abs=0.01)
    assert track.rejected_by_reason == {
        "jump": 1,
        "duplicate": 2,
        "zero": 1,
        "invalid": 1,
        "future": 1,
    }
    assert list(track.fixes) == good
    assert track.restarts == ()


def test_without_a_receipt_time_no_fix_is_judged_future() -> None:
    late = fix(T0 + timedelta(days=400), 49.0)
    assert filter_fixes([late]).fixes == (late,)


def test_a_bad_first_fix_is_dropped_and_the_real_track_kept() -> None:
    real = meridian_track(10, 100.0, timedelta(seconds=5))
    spike = fix(T0 - timedelta(seconds=5), 48.0)
    track = filter_fixes([spike, *real])
    assert [r.fix for r in track.rejected] == [spike]
    assert track.fixes == tuple(real)
    assert track.distance_m == pytest.approx(900.0, abs=1e-6)


def test_a_real_relocation_is_kept_but_the_jump_is_not_counted() -> None:
    every = timedelta(seconds=5)
    before = meridian_track(5, 50.0, every)
    # Five fixes that agree with one another, 30 km away, 5 s after the last one.
    after = meridian_track(5, 50.0, every, start=T0 + 5 * every, start_lat=lat_after(30_000))
    track = filter_fixes([*before, *after])
    assert track.rejected == ()
    assert track.restarts == (after[0].t,)
    assert track.distance_m == pytest.approx(400.0, abs=1e-6)


def test_two_agreeing_spikes_are_still_dropped() -> None:
    real = meridian_track(10, 100.0, timedelta(seconds=5))
    spikes = [fix(T0 + timedelta(seconds=21), 49.4), fix(T0 + timedelta(seconds=22), 49.4)]
    track = filter_fixes([*real, *spikes])
    assert [r.reason for r in track.rejected] == ["jump", "jump"]
    assert track.distance_m == pytest.approx(900.0, abs=1e-6)


def test_a_parked_receiver_wandering_a_few_metres_adds_no_distance() -> None:
    wobble = [lat_after(3.0 if i % 2 else -3.0) for i in range(720)]
    parked = [fix(T0 + timedelta(seconds=5 * i), lat, speed=0.0) for i, lat in enumerate(wobble)]
    assert filter_fixes(parked).distance_m == 0.0
    # Counting every wobble would have made 719 × 6 m.
    unfiltered = filter_fixes(parked, FixFilterConfig(min_step_m=0.0))
    assert unfiltered.distance_m == pytest.approx(719 * 6.0, rel=1e-6)


def test_distance_per_local_day_and_per_trip() -> None:
    # 22:55 to 23:05 UTC is 23:55 to 00:05 in Paris (UTC+1 in January).
    start = datetime(2026, 1, 6, 22, 55, tzinfo=UTC)
    track = filter_fixes(meridian_track(21, 100.0, timedelta(seconds=30), start=start))
    by_day = track.distance_by_day_m(ZoneInfo("Europe/Paris"))
    # Steps are counted at the fix ending them: 9 end before midnight, the 10th at it.
    assert by_day == {
        date(2026, 1, 6): pytest.approx(900.0, abs=1e-6),
        date(2026, 1, 7): pytest.approx(1100.0, abs=1e-6),
    }
    trips = [
        Trip("first", start, start + timedelta(minutes=3)),
        Trip("rest", start + timedelta(minutes=3), start + timedelta(hours=1)),
    ]
    assert track.distance_by_trip_m(trips) == {
        "first": pytest.approx(500.0, abs=1e-6),
        "rest": pytest.approx(1500.0, abs=1e-6),
    }


def test_bad_settings_and_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="max_speed_mps"):
        FixFilterConfig(max_speed_mps=0)
    with pytest.raises(ValueError, match="confirm_fixes"):
        FixFilterConfig(confirm_fixes=0)
    with pytest.raises(ValueError, match="no time zone"):
        filter_fixes([], now=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="before start"):
        Trip("x", T0, T0 - timedelta(seconds=1))
