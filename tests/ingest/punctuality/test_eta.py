from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pytest

from ingest.geo import haversine_m
from ingest.itinerary import Itinerary
from ingest.punctuality.eta import road_distance_m, travel_time, upcoming_etas
from ingest.punctuality.schedule import (
    DayCancellation,
    ScheduleRules,
    expand_schedule,
)
from tests.ingest.punctuality.tracks import offset, stop_at

MONDAY_0800_LOCAL = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


def test_haversine_known_distances() -> None:
    # One degree of latitude, a quarter meridian and half the equator on the mean sphere.
    assert haversine_m(49.0, 1.0, 50.0, 1.0) == pytest.approx(111_195, abs=1)
    assert haversine_m(0.0, 0.0, 90.0, 0.0) == pytest.approx(math.pi / 2 * 6_371_008.8)
    assert haversine_m(0.0, -90.0, 0.0, 90.0) == pytest.approx(math.pi * 6_371_008.8)
    assert haversine_m(49.2, 1.6, 49.2, 1.6) == 0.0


def test_travel_time_is_distance_times_detour_over_speed() -> None:
    stop = stop_at()
    lat, lon = offset(stop.lat, stop.lon, 0.0, 10_000.0)
    assert road_distance_m(lat, lon, stop, 1.3) == pytest.approx(13_000, rel=1e-3)
    assert travel_time(lat, lon, stop, 10.0, 1.3).total_seconds() == pytest.approx(1300, rel=1e-3)
    assert travel_time(lat, lon, stop, 20.0, 1.0).total_seconds() == pytest.approx(500, rel=1e-3)
    assert travel_time(stop.lat, stop.lon, stop, 10.0) == timedelta(0)


@pytest.mark.parametrize(
    ("speed", "detour", "message"),
    [(0.0, 1.3, "speed"), (-3.0, 1.3, "speed"), (math.nan, 1.3, "speed"), (10.0, 0.9, "detour")],
)
def test_bad_speed_or_detour_is_rejected(speed: float, detour: float, message: str) -> None:
    stop = stop_at()
    with pytest.raises(ValueError, match=message):
        travel_time(49.0, 1.0, stop, speed, detour)


def test_upcoming_etas_chain_through_the_day(itinerary: Itinerary) -> None:
    visits = expand_schedule(itinerary, date(2026, 11, 23), date(2026, 11, 24))
    stops = {s.id: s for s in itinerary.stops}
    gisors, vesly, hacqueville = (stops[s] for s in ("gisors", "vesly", "hacqueville"))

    etas = upcoming_etas(
        "vexin-01",
        gisors.lat,
        gisors.lon,
        MONDAY_0800_LOCAL,
        visits=visits,
        stops=stops,
        speed_mps=12.5,
        limit=3,
    )

    assert [e.visit.id for e in etas] == [
        "vexin-01:2026-11-23:vesly",
        "vexin-01:2026-11-23:hacqueville",
        "vexin-01:2026-11-24:gisors",
    ]
    to_vesly = haversine_m(gisors.lat, gisors.lon, vesly.lat, vesly.lon) * 1.3
    assert etas[0].road_distance_m == pytest.approx(to_vesly)
    assert etas[0].expected_arrival == MONDAY_0800_LOCAL + timedelta(seconds=to_vesly / 12.5)
    assert etas[0].expected_delay < timedelta(0)
    # The next leg starts from Vesly at its scheduled departure (12:00 local, 11:00 UTC).
    to_hacqueville = haversine_m(vesly.lat, vesly.lon, hacqueville.lat, hacqueville.lon) * 1.3
    assert etas[1].expected_arrival == datetime(2026, 11, 23, 11, 0, tzinfo=UTC) + timedelta(
        seconds=to_hacqueville / 12.5
    )


def test_upcoming_etas_skip_done_cancelled_and_past_visits(itinerary: Itinerary) -> None:
    rules = ScheduleRules(day_cancellations=(DayCancellation(date(2026, 11, 24), "vexin-01"),))
    visits = expand_schedule(itinerary, date(2026, 11, 23), date(2026, 11, 25), rules)
    stops = {s.id: s for s in itinerary.stops}
    vesly = stops["vesly"]
    at = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # during the Vesly visit

    etas = upcoming_etas(
        "vexin-01",
        vesly.lat,
        vesly.lon,
        at,
        visits=visits,
        stops=stops,
        speed_mps=12.0,
        done={"vexin-01:2026-11-23:vesly"},
    )
    assert [e.visit.id for e in etas] == [
        "vexin-01:2026-11-23:hacqueville",
        "vexin-01:2026-11-25:hebecourt",
        "vexin-01:2026-11-25:morgny",
    ]

    late = datetime(2026, 11, 23, 11, 30, tzinfo=UTC)  # after Vesly's scheduled end
    assert upcoming_etas(
        "vexin-01", vesly.lat, vesly.lon, late, visits=visits, stops=stops, speed_mps=12.0, limit=1
    )[0].visit.id == ("vexin-01:2026-11-23:hacqueville")


def test_upcoming_etas_bad_input(itinerary: Itinerary) -> None:
    visits = expand_schedule(itinerary, date(2026, 11, 23), date(2026, 11, 23))
    with pytest.raises(ValueError, match="unknown stop 'vesly'"):
        upcoming_etas(
            "vexin-01", 49.0, 1.0, MONDAY_0800_LOCAL, visits=visits, stops={}, speed_mps=10.0
        )
    with pytest.raises(ValueError, match="no time zone"):
        upcoming_etas(
            "vexin-01",
            49.0,
            1.0,
            datetime(2026, 11, 23, 8, 0),
            visits=visits,
            stops={},
            speed_mps=10.0,
        )
