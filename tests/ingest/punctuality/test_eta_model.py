"""The ETA model (pure): a parked bus does not leave "now", driving time is moving time,
a bus that is not coming is flagged as soon as the arithmetic says so, and the default
speed model agrees with the speeds the simulated buses drive."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.geo import haversine_m
from ingest.itinerary import Itinerary, Stop
from ingest.punctuality.classification import PunctualityThresholds, Stay
from ingest.punctuality.config import PunctualitySettings
from ingest.punctuality.detector import Fix
from ingest.punctuality.eta import (
    DrivingModel,
    HeldVisit,
    LegTrip,
    Prediction,
    PredictionOutcome,
    Whereabouts,
    accuracy_by_horizon,
    horizon_bucket,
    learn_driving,
    learn_habits,
    leg_trips,
    moving_seconds,
    predict_arrivals,
    whereabouts,
    with_timetable_where_better,
)
from ingest.punctuality.schedule import Visit, expand_schedule
from simulators.day_plan import Driving, plan_day
from simulators.scenario import bundled_scenarios, load_scenario
from tests.ingest.punctuality.tracks import offset

MONDAY = date(2026, 11, 23)  # Vesly 08:00-11:00 UTC, Hacqueville 13:00-16:00 UTC
DRIVING = DrivingModel.default(65.0, 1.2)


def utc(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 11, 23, hour, minute, second, tzinfo=UTC)


@pytest.fixture
def day(itinerary: Itinerary) -> tuple[list[Visit], dict[str, Stop]]:
    visits = expand_schedule(itinerary, MONDAY, MONDAY, vehicles=["vexin-01"])
    return visits, {s.id: s for s in itinerary.stops}


def parked(
    stop: Stop | tuple[float, float],
    t: datetime,
    since: datetime | None = None,
    at_stop: str | None = None,
) -> Whereabouts:
    lat, lon = (stop.lat, stop.lon) if isinstance(stop, Stop) else stop
    return Whereabouts(t, lat, lon, False, since or t - timedelta(hours=1), at_stop, None)


def by_stop(predictions: list[Prediction]) -> dict[str, Prediction]:
    return {p.visit.stop: p for p in predictions}


def drive(stops: dict[str, Stop], a: str, b: str) -> timedelta:
    crow = haversine_m(stops[a].lat, stops[a].lon, stops[b].lat, stops[b].lon)
    return timedelta(seconds=DRIVING.drive_s((a, b), crow))


# --- 1. a parked bus does not leave "now" -------------------------------------------------


def test_a_bus_holding_its_visit_leaves_at_the_visits_end(
    day: tuple[list[Visit], dict[str, Stop]],
) -> None:
    visits, stops = day
    vesly, hacqueville = visits
    # The visit at Vesly runs until 12:58 (a change): at 10:00 the bus is there.
    held = Visit(**{**vesly.__dict__, "scheduled_departure": utc(12, 58)})
    where = parked(stops["vesly"], utc(10), at_stop="vesly")
    [p] = predict_arrivals(
        where,
        visits=[held, hacqueville],
        stops=stops,
        driving=DRIVING,
        made={held.id},
        current=held,
    )
    assert p.visit == hacqueville
    assert p.expected_arrival == utc(12, 58) + drive(stops, "vesly", "hacqueville")
    assert p.earliest >= utc(12, 58)
    assert p.state == "waiting_to_leave"
    assert p.source == "position"


def test_at_the_depot_in_the_morning_the_bus_keeps_its_timetable(
    day: tuple[list[Visit], dict[str, Stop]],
) -> None:
    visits, stops = day
    where = parked(stops["gisors"], utc(6, 30), at_stop="gisors")
    first, second = predict_arrivals(where, visits=visits, stops=stops, driving=DRIVING)
    assert first.expected_arrival == utc(8)  # not 06:30 + 20 min
    assert (first.state, first.source) == ("waiting_to_leave", "timetable")
    assert first.earliest == utc(7, 55)
    assert first.latest == utc(8, 5)
    assert second.expected_arrival == utc(13)
    assert second.state == "on_time"

    # With history: this bus parks three minutes early at Vesly on Mondays.
    habits = learn_habits(
        HeldVisit(
            Visit(
                f"vexin-01:{d}:vesly",
                "vexin-01",
                "vesly",
                d,
                datetime.combine(d, utc(8).timetz()),
                datetime.combine(d, utc(11).timetz()),
            ),
            datetime.combine(d, utc(7, 57, s).timetz()),
        )
        for d, s in [(MONDAY - timedelta(weeks=k), 5 * k) for k in (1, 2, 3)]
    )
    first = predict_arrivals(where, visits=visits, stops=stops, driving=DRIVING, habits=habits)[0]
    assert first.source == "history"
    assert first.expected_arrival == utc(7, 57, 10)
    # The history's spread (07:57:05-07:57:15), widened to a minute either side.
    assert (first.earliest, first.latest) == (utc(7, 56, 10), utc(7, 58, 10))


def test_at_lunch_off_every_stop_the_bus_is_not_sent_off_now(
    day: tuple[list[Visit], dict[str, Stop]],
) -> None:
    visits, stops = day
    restaurant = offset(stops["hacqueville"].lat, stops["hacqueville"].lon, 3000.0, 0.0)
    where = parked(restaurant, utc(11, 45), since=utc(11, 20))
    [p] = predict_arrivals(where, visits=visits, stops=stops, driving=DRIVING, made={visits[0].id})
    assert p.expected_arrival == utc(13)
    assert p.state == "waiting_to_leave"


@settings(max_examples=200, deadline=None)
@given(
    minutes_in=st.integers(min_value=0, max_value=600),
    ends_after=st.integers(min_value=1, max_value=400),
)
def test_a_parked_bus_never_arrives_before_its_visit_ends_plus_the_drive(
    itinerary: Itinerary, minutes_in: int, ends_after: int
) -> None:
    visits = expand_schedule(itinerary, MONDAY, MONDAY, vehicles=["vexin-01"])
    stops = {s.id: s for s in itinerary.stops}
    now = utc(6) + timedelta(minutes=minutes_in)
    ends = now + timedelta(minutes=ends_after)
    held = Visit("vexin-01:2026-11-23:bezu", "vexin-01", "bezu-saint-eloi", MONDAY, now, ends)
    where = parked(stops["bezu-saint-eloi"], now, at_stop="bezu-saint-eloi")
    for p in predict_arrivals(
        where,
        visits=[held, *visits],
        stops=stops,
        driving=DRIVING,
        made={held.id},
        current=held,
    ):
        assert p.expected_arrival >= ends + drive(stops, "bezu-saint-eloi", p.visit.stop)
        assert p.earliest >= min(ends, p.visit.scheduled_arrival - timedelta(minutes=5))
        assert p.latest is None or p.latest >= p.expected_arrival >= p.earliest


# --- 2. learned driving time is moving time -----------------------------------------------


def _fixes(start: datetime, pattern: list[tuple[int, float]]) -> list[Fix]:
    """One fix a second: (seconds, speed) runs, from 49.2, 1.6 heading east."""
    out, t, east = [], start, 0.0
    for seconds, speed in pattern:
        for _ in range(seconds):
            east += speed
            lat, lon = offset(49.2, 1.6, east, 0.0)
            out.append(Fix(t, lat, lon, speed, 0.9))
            t += timedelta(seconds=1)
    return out


def test_standstills_longer_than_two_minutes_are_not_driving() -> None:
    start = utc(11)
    # 10 min driving, a 60 s red light, 10 min driving, a 90 min lunch, 5 min driving.
    fixes = _fixes(start, [(600, 15.0), (60, 0.0), (600, 15.0), (5400, 0.0), (300, 15.0)])
    end = fixes[-1].t
    assert moving_seconds(fixes, start, end) == pytest.approx(1500 + 60, abs=3)
    # A standstill of two minutes still counts as driving; a longer one does not.
    at_limit = _fixes(start, [(60, 15.0), (121, 0.0), (60, 15.0)])
    over = _fixes(start, [(60, 15.0), (123, 0.0), (60, 15.0)])
    assert moving_seconds(at_limit, start, at_limit[-1].t) == pytest.approx(241, abs=1)
    assert moving_seconds(over, start, over[-1].t) < 130
    assert moving_seconds([], start, start) == 0.0
    assert moving_seconds([], start, start - timedelta(hours=1)) == 0.0


def test_a_leg_first_driven_with_a_lunch_break_is_learnt_at_its_driving_speed(
    itinerary: Itinerary,
) -> None:
    stops = {s.id: s for s in itinerary.stops}
    default = DrivingModel.default(65.0, 1.2)
    clean: list[Stay] = []
    lunch: list[Stay] = []
    fixes: list[Fix] = []
    for week in range(4):
        dep = utc(11) - timedelta(weeks=week)
        # The same 20-minute drive; on the first week with a 90-minute stop half way.
        pattern = [(600, 14.0), (5400, 0.0), (600, 14.0)] if week == 3 else [(1200, 14.0)]
        drive_fixes = _fixes(dep, pattern)
        fixes += drive_fixes
        stays = [
            Stay("vexin-01", "vesly", dep - timedelta(hours=3), dep),
            Stay("vexin-01", "hacqueville", drive_fixes[-1].t + timedelta(seconds=1)),
        ]
        (lunch if week == 3 else clean).extend(stays)
    fixes.sort(key=lambda f: f.t)

    def between(a: datetime, b: datetime) -> list[Fix]:
        return [f for f in fixes if a <= f.t <= b]

    trips = leg_trips(clean + lunch, between)
    assert len(trips) == 4
    assert all(t.moving_s == pytest.approx(1200, abs=5) for t in trips)
    model = learn_driving(trips, stops, default)
    crow = haversine_m(
        stops["vesly"].lat, stops["vesly"].lon, stops["hacqueville"].lat, stops["hacqueville"].lon
    )
    assert model.drive_s(("vesly", "hacqueville"), crow) == pytest.approx(1200, rel=0.02)
    with pytest.raises(ValueError, match="several vehicles"):
        leg_trips([*clean, Stay("caux-01", "yvetot", utc(3))], between)


def test_without_history_the_default_model_is_kept(itinerary: Itinerary) -> None:
    stops = {s.id: s for s in itinerary.stops}
    model = learn_driving([], stops, DRIVING)
    assert model.crow_speed_mps == DRIVING.crow_speed_mps
    assert model.leg_factor == {}
    unknown = LegTrip("nowhere", "vesly", utc(8), utc(9), 600.0)
    assert learn_driving([unknown], stops, DRIVING).leg_factor == {}
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="speed"):
            DrivingModel(bad)
    with pytest.raises(ValueError, match="detour"):
        DrivingModel.default(65.0, 0.5)


# --- 3. a bus that is not coming is flagged -----------------------------------------------


def test_a_bus_standing_near_the_stop_for_hours_is_not_confirmed(
    day: tuple[list[Visit], dict[str, Stop]],
) -> None:
    visits, stops = day
    vesly = stops["vesly"]
    near = offset(vesly.lat, vesly.lon, 1600.0, 0.0)
    # Before it should set off: it waits, and the timetable holds.
    early = predict_arrivals(
        parked(near, utc(7, 30), since=utc(7)), visits=visits, stops=stops, driving=DRIVING
    )[0]
    assert (early.state, early.expected_arrival) == ("waiting_to_leave", utc(8))
    # Past the moment it had to leave to be on time, still standing off every stop.
    late = predict_arrivals(
        parked(near, utc(8, 10), since=utc(7)), visits=visits, stops=stops, driving=DRIVING
    )[0]
    assert late.state == "not_confirmed"
    assert late.latest is None
    assert late.expected_arrival > utc(8, 10)
    # An hour before the visit ends it could still come; a minute before, it cannot.
    doubtful = predict_arrivals(
        parked(near, utc(10, 59), since=utc(7)), visits=visits, stops=stops, driving=DRIVING
    )[0]
    assert doubtful.state == "doubtful"
    assert doubtful.earliest > utc(11)


def test_a_bus_at_a_garage_far_away_turns_doubtful_as_soon_as_it_cannot_make_it(
    day: tuple[list[Visit], dict[str, Stop]],
) -> None:
    visits, stops = day
    vesly = stops["vesly"]
    garage = offset(vesly.lat, vesly.lon, 0.0, -11000.0)
    crow = haversine_m(garage[0], garage[1], vesly.lat, vesly.lon)
    fastest = timedelta(seconds=0.8 * DRIVING.general_s(crow))
    last_chance = utc(11) - fastest
    states = {}
    for t in (last_chance - timedelta(minutes=1), last_chance + timedelta(seconds=1)):
        p = predict_arrivals(
            parked(garage, t, since=utc(7)), visits=visits, stops=stops, driving=DRIVING
        )[0]
        states[t] = p.state
    assert list(states.values()) == ["not_confirmed", "doubtful"]
    # A visit it cannot make is no stage on its way: the next one is reckoned from here.
    t = last_chance + timedelta(minutes=5)
    first, second = predict_arrivals(
        parked(garage, t, since=utc(7)), visits=visits, stops=stops, driving=DRIVING
    )
    assert first.state == "doubtful"
    assert second.expected_arrival == utc(13)


def test_a_bus_driving_away_from_its_next_stop_is_not_confirmed(
    day: tuple[list[Visit], dict[str, Stop]],
) -> None:
    visits, stops = day
    vesly = stops["vesly"]
    start = utc(7, 40)
    away = [
        Fix(
            start + timedelta(seconds=s),
            *offset(vesly.lat, vesly.lon, 0.0, -5000.0 - 14.0 * s),
            14.0,
            0.9,
        )
        for s in range(0, 300)
    ]
    towards = [
        Fix(
            start + timedelta(seconds=s),
            *offset(vesly.lat, vesly.lon, 0.0, -9000.0 + 14.0 * s),
            14.0,
            0.9,
        )
        for s in range(0, 300)
    ]
    gone = predict_arrivals(whereabouts(away), visits=visits, stops=stops, driving=DRIVING)[0]
    coming = predict_arrivals(whereabouts(towards), visits=visits, stops=stops, driving=DRIVING)[0]
    assert gone.state == "not_confirmed"
    assert coming.state in {"early", "on_time"}
    assert coming.source == "position"
    assert coming.latest is not None and coming.earliest < coming.expected_arrival < coming.latest


def test_a_visit_the_bus_went_past_is_not_confirmed(
    day: tuple[list[Visit], dict[str, Stop]],
) -> None:
    visits, stops = day
    vesly, hacqueville = visits
    extra = Visit("vexin-01:2026-11-23:morgny", "vexin-01", "morgny", MONDAY, utc(9), utc(10))
    where = parked(stops["morgny"], utc(9, 30), at_stop="morgny")
    p = by_stop(
        predict_arrivals(
            where,
            visits=[vesly, extra, hacqueville],
            stops=stops,
            driving=DRIVING,
            made={extra.id},
            current=extra,
        )
    )
    assert p["vesly"].state == "not_confirmed"


# --- 4. the speed model against the simulated buses --------------------------------------


def test_the_default_model_matches_the_simulated_buses_5_to_15_minutes_out(
    itinerary: Itinerary,
) -> None:
    model = DrivingModel.default(
        PunctualitySettings().default_speed_kmh, PunctualitySettings().detour_factor
    )
    signed: list[float] = []
    for name in ("vexin-monday-on-time", "vexin-drive-by"):
        plan = plan_day(load_scenario(bundled_scenarios()[name]), itinerary)
        for phase in plan.phases:
            if not isinstance(phase, Driving):
                continue
            end = phase.road.places[-1]
            t = phase.start_s + 60
            while t < phase.end_s:
                to_go = phase.end_s - t
                if 300 <= to_go <= 900:
                    m = plan.motion_at(t)
                    crow = haversine_m(m.lat, m.lon, end.lat, end.lon)
                    signed.append(model.general_s(crow, moving=True) - to_go)
                t += 30
    assert len(signed) > 20
    # The previous defaults (45 km/h, roads 1.3 × the straight line) ran about 5 min late.
    assert abs(statistics.median(signed)) < 120
    old = DrivingModel.default(45.0, 1.3)
    assert old.crow_speed_mps < 0.7 * model.crow_speed_mps


# --- states, bounds and accuracy -----------------------------------------------------------


def test_bad_input_is_refused(day: tuple[list[Visit], dict[str, Stop]]) -> None:
    visits, stops = day
    with pytest.raises(ValueError, match="time zone"):
        Whereabouts(datetime(2026, 11, 23, 8), 49.0, 1.0, False, None, None, None)
    where = parked(stops["gisors"], utc(6))
    with pytest.raises(ValueError, match="limit"):
        predict_arrivals(where, visits=visits, stops=stops, driving=DRIVING, limit=0)
    lost = Visit("vexin-01:2026-11-23:x", "vexin-01", "x", MONDAY, utc(9), utc(10))
    with pytest.raises(ValueError, match="unknown stop 'x'"):
        predict_arrivals(where, visits=[lost], stops=stops, driving=DRIVING)
    with pytest.raises(ValueError, match="no fix"):
        whereabouts([])
    # A cancelled visit, or one whose window closed, gets no prediction.
    cancelled = Visit(**{**visits[0].__dict__, "cancelled_reason": "GP ill"})
    only = predict_arrivals(where, visits=[cancelled, visits[1]], stops=stops, driving=DRIVING)
    assert [p.visit.stop for p in only] == ["hacqueville"]
    assert (
        predict_arrivals(
            parked(stops["gisors"], utc(16, 1)), visits=visits, stops=stops, driving=DRIVING
        )
        == []
    )


def test_horizon_buckets_and_accuracy() -> None:
    assert [horizon_bucket(s) for s in (0, 299, 300, 899, 900, 1799, 3599, 3600, 1e9)] == [
        "0-5",
        "0-5",
        "5-15",
        "5-15",
        "15-30",
        "15-30",
        "30-60",
        ">60",
        ">60",
    ]
    arrival = utc(9, 10)
    outcomes = [
        PredictionOutcome(
            1, arrival - timedelta(minutes=3), arrival + timedelta(seconds=e), utc(9), arrival
        )
        for e in (10, -20, 30)
    ] + [
        PredictionOutcome(
            2, arrival - timedelta(hours=2), arrival + timedelta(minutes=20), utc(9), arrival
        ),
        # Made after the arrival (late data): not counted.
        PredictionOutcome(1, arrival + timedelta(minutes=1), arrival, utc(9), arrival),
    ]
    by_bucket = {a.bucket: a for a in accuracy_by_horizon(outcomes)}
    assert by_bucket["0-5"].predictions == 3
    assert by_bucket["0-5"].eta_p50_s == 20.0
    assert by_bucket["0-5"].eta_p90_s == 30.0
    assert by_bucket["0-5"].timetable_p50_s == 600.0
    assert not by_bucket["0-5"].timetable_better
    assert by_bucket[">60"].timetable_better
    assert by_bucket["5-15"].predictions == 0 and by_bucket["5-15"].eta_p50_s is None
    assert [a.predictions for a in accuracy_by_horizon(outcomes, rank=2)] == [0, 0, 0, 0, 1]


def test_the_timetable_stands_in_where_it_has_done_better(
    day: tuple[list[Visit], dict[str, Stop]],
) -> None:
    visits, stops = day
    fixes = [
        Fix(
            utc(7, 40) + timedelta(seconds=s),
            *offset(stops["vesly"].lat, stops["vesly"].lon, 0.0, -9000.0 + 14.0 * s),
            14.0,
            0.9,
        )
        for s in range(60)
    ]
    p = predict_arrivals(whereabouts(fixes), visits=visits, stops=stops, driving=DRIVING)[0]
    bucket = horizon_bucket((p.expected_arrival - utc(7, 41)).total_seconds())
    assert with_timetable_where_better(p, utc(7, 41), set()) == p
    swapped = with_timetable_where_better(p, utc(7, 41), {bucket})
    assert swapped.source == "timetable"
    assert swapped.expected_arrival == utc(8)
    assert swapped.earliest <= utc(8) <= swapped.latest  # type: ignore[operator]
    doubtful = Prediction(**{**p.__dict__, "state": "doubtful"})
    assert with_timetable_where_better(doubtful, utc(7, 41), {bucket}) == doubtful


def test_habits_need_three_visits_and_prefer_the_weekday(itinerary: Itinerary) -> None:
    def held(d: date, minutes: int) -> HeldVisit:
        v = Visit(
            f"v:{d}",
            "vexin-01",
            "vesly",
            d,
            datetime.combine(d, utc(8).timetz()),
            datetime.combine(d, utc(11).timetz()),
        )
        return HeldVisit(v, v.scheduled_arrival + timedelta(minutes=minutes))

    mondays = [held(MONDAY - timedelta(weeks=k), 10) for k in (1, 2, 3)]
    thursdays = [held(MONDAY - timedelta(weeks=k) + timedelta(days=3), -4) for k in (1, 2)]
    habits = learn_habits(mondays + thursdays)
    monday = Visit("m", "vexin-01", "vesly", MONDAY, utc(8), utc(11))
    thursday = Visit("t", "vexin-01", "vesly", MONDAY + timedelta(days=3), utc(8), utc(11))
    assert habits.of(monday) is not None and habits.of(monday).arrival_p50_s == 600  # type: ignore[union-attr]
    # Two Thursdays are not enough on their own: the stop's habit over all days stands in.
    assert habits.of(thursday) == habits.by_stop["vesly"]
    assert learn_habits(mondays[:2]).of(monday) is None
    assert PunctualityThresholds().on_time_until == timedelta(minutes=5)


def test_times_at_the_ends_of_the_calendar_and_positions_off_the_earth() -> None:
    stop = Stop(id="a", name="A", lat=49.0, lon=1.0, radius_m=100)
    end = datetime(9999, 12, 31, 23, 0, tzinfo=UTC)
    last = Visit(
        "x:9999-12-31:a",
        "x",
        "a",
        end.date(),
        end + timedelta(minutes=30),
        end + timedelta(minutes=50),
    )
    with pytest.raises(ValueError, match="beyond the end of the calendar"):
        predict_arrivals(
            parked((49.1, 1.0), end), visits=[last], stops={"a": stop}, driving=DRIVING
        )
    start = datetime(1, 1, 1, 1, 0, tzinfo=UTC)
    first = Visit(
        "x:0001-01-01:a",
        "x",
        "a",
        start.date(),
        start + timedelta(minutes=5),
        start + timedelta(minutes=8),
    )
    [p] = predict_arrivals(
        parked((49.1, 1.0), start), visits=[first], stops={"a": stop}, driving=DRIVING
    )
    assert p.state == "doubtful"  # 11 km in the 8 minutes left: not even at full speed
    for lat, lon in ((math.nan, 1.0), (49.0, math.inf), (91.0, 1.0), (49.0, -180.5)):
        with pytest.raises(ValueError, match="not on the Earth"):
            Whereabouts(start, lat, lon, False, None, None, None)


def test_leg_factors_are_medians_of_direct_drives(itinerary: Itinerary) -> None:
    stops = {s.id: s for s in itinerary.stops}
    stays: list[Stay] = []
    for week, minutes in enumerate((10, 12, 30, 240)):  # the 4-hour one was no direct drive
        left = utc(8) + timedelta(days=7 * week)
        stays += [
            Stay("vexin-01", "vesly", left - timedelta(hours=3), left),
            Stay("vexin-01", "hacqueville", left + timedelta(minutes=minutes)),
        ]
    # No fixes on the way (an outage all along): the whole time counts as driving.
    trips = leg_trips(stays, lambda a, b: [])
    assert [t.moving_s for t in trips] == [600, 720, 1800]
    model = learn_driving(trips, stops, DRIVING)
    crow = haversine_m(
        stops["vesly"].lat, stops["vesly"].lon, stops["hacqueville"].lat, stops["hacqueville"].lon
    )
    assert model.drive_s(("vesly", "hacqueville"), crow) == pytest.approx(720, rel=1e-6)
    assert model.drive_s(("hacqueville", "vesly"), crow) == pytest.approx(model.general_s(crow))
