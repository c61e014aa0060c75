"""The labelled scenario days: their true events, decoys and receiver fixes."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from ingest.itinerary import Itinerary
from simulators.day_plan import plan_day
from simulators.labelled_days import (
    AS_WRITTEN,
    DEFAULT_VARIANTS,
    LabelledDay,
    Variant,
    arrivals_in_outages,
    labelled_days,
    receiver_fixes,
)
from simulators.scenario import ScenarioError, bundled_scenarios, load_scenario, parse_scenario


def as_written(itinerary: Itinerary, name: str) -> LabelledDay:
    (day,) = labelled_days(itinerary, [name], [AS_WRITTEN], every_weekday=False)
    return day


def test_true_events_are_the_stays_and_agree_with_the_visits(itinerary: Itinerary) -> None:
    day = as_written(itinerary, "vexin-monday-on-time")
    events = day.true_events
    assert [(e.stop, e.kind) for e in events] == [
        ("gisors", "arrival"),
        ("gisors", "departure"),
        ("vesly", "arrival"),
        ("vesly", "departure"),
        ("hacqueville", "arrival"),
        ("hacqueville", "departure"),
        ("gisors", "arrival"),
    ]
    # Parked at the depot when the day's data begins: that arrival cannot be timed.
    assert [e.censored for e in events] == [True] + [False] * 6
    assert events[0].t == day.truth.start
    for visit in day.truth.visits:
        arrival = next(e for e in events if e.stop == visit.stop and e.kind == "arrival")
        departure = next(e for e in events if e.stop == visit.stop and e.kind == "departure")
        # The departure is when the bus set off, before it crossed the zone's edge.
        assert (arrival.t, departure.t) == (visit.arrival, visit.set_off)
        assert visit.departure is not None and visit.set_off is not None
        assert visit.set_off < visit.departure
    assert day.visits == 2
    assert day.decoys == ()


def test_a_visit_at_the_depot_then_the_evening_there_is_one_stay(itinerary: Itinerary) -> None:
    # Tuesday of the Caux bus: Saint-Martin-de-l'If, then Yvetot, its depot, till evening.
    scenario = load_scenario(bundled_scenarios()["caux-network-loss"]).on(date(2026, 11, 17))
    day = LabelledDay("caux-network-loss", "tuesday", plan_day(scenario, itinerary))
    yvetot = [(e.kind, e.censored) for e in day.true_events if e.stop == "yvetot"]
    assert yvetot == [("arrival", True), ("departure", False), ("arrival", False)]


def test_a_drive_by_and_a_red_light_are_decoys(itinerary: Itinerary) -> None:
    drive_by = as_written(itinerary, "vexin-drive-by")
    (passage,) = drive_by.decoys
    assert (passage.stop, passage.kind) == ("bezu-saint-eloi", "drive_by")
    assert not [e for e in drive_by.true_events if e.stop == "bezu-saint-eloi"]

    light = as_written(itinerary, "vexin-traffic-light")
    (red,) = light.decoys
    assert (red.stop, red.kind) == ("hebecourt", "rest_in_zone")
    assert 40 <= (red.end - red.start).total_seconds() <= 50
    arrival = next(e for e in light.true_events if e.stop == "hebecourt" and e.kind == "arrival")
    assert red.end < arrival.t


def test_a_skipped_stop_has_no_true_event(itinerary: Itinerary) -> None:
    day = as_written(itinerary, "vexin-stop-skipped")
    assert day.visits == 2
    assert {e.stop for e in day.true_events} == {"gisors", "morgny"}


def test_the_receiver_gives_no_fix_during_an_outage(itinerary: Itinerary) -> None:
    raw = {
        "seed": 3,
        "vehicle": {"id": "vexin-01"},
        "day": {"date": date(2026, 11, 20), "start": "13:00", "end": "13:30"},
        "event": [{"kind": "gps_outage", "at": "13:10", "duration_min": 12}],
    }
    plan = plan_day(parse_scenario(raw, "test", "short-outage"), itinerary)
    fixes = receiver_fixes(plan)
    assert len(fixes) == 30 * 60 + 1 - 12 * 60
    outage_start = plan.time_of(600)
    outage_end = outage_start + timedelta(minutes=12)
    assert not [f for f in fixes if outage_start <= f.t < outage_end]
    assert all(f.hdop is not None and f.speed_mps is not None for f in fixes)
    assert fixes == receiver_fixes(plan)


def test_the_set_covers_the_weekdays_that_fit(itinerary: Itinerary) -> None:
    days = list(labelled_days(itinerary, ["vexin-drive-by"], [AS_WRITTEN]))
    # Tuesdays and Fridays the bus visits Bézu-Saint-Éloi: driving by it would be no drive-by.
    assert [d.day.isoweekday() for d in days] == [1, 3, 4]
    assert len({d.label for d in days}) == 3
    everything = list(labelled_days(itinerary, variants=[AS_WRITTEN]))
    assert {d.scenario for d in everything} == set(bundled_scenarios())
    assert sum(d.visits for d in everything) >= 60


def test_variants_change_date_seed_crew_and_receiver(itinerary: Itinerary) -> None:
    base = load_scenario(bundled_scenarios()["vexin-monday-on-time"])
    changed = Variant("v", weeks_later=26, seed_offset=5, early_min=15.0, noise_m=5.0).apply(base)
    assert changed.day.date == base.day.date + timedelta(weeks=26)
    assert changed.day.date.isoweekday() == base.day.date.isoweekday()
    assert changed.seed == base.seed + 5
    assert (changed.day.early_min, changed.gps.noise_m) == (15.0, 5.0)
    assert AS_WRITTEN.apply(base) == base
    early = plan_day(changed, itinerary).visits[0]
    assert early.arrival_s is not None
    assert early.scheduled_arrival_s - early.arrival_s == pytest.approx(15 * 60, abs=1)
    assert len({v.name for v in DEFAULT_VARIANTS}) == len(DEFAULT_VARIANTS)


def test_an_unknown_scenario_is_refused(itinerary: Itinerary) -> None:
    with pytest.raises(ScenarioError, match="no-such-day: no such bundled scenario"):
        list(labelled_days(itinerary, ["no-such-day"]))


def test_outage_days_lose_the_fix_around_each_arrival(itinerary: Itinerary) -> None:
    days = list(arrivals_in_outages(itinerary, ["vexin-monday-on-time"], [AS_WRITTEN]))
    assert [d.variant for d in days] == ["as-written+outage-vesly", "as-written+outage-hacqueville"]
    for day in days:
        (outage,) = day.plan.gps_outages
        assert outage.end_s - outage.start_s <= 600.0
        stop = day.variant.rsplit("-", 1)[-1]
        (arrival,) = [e for e in day.true_events if e.stop == stop and e.kind == "arrival"]
        assert arrival.in_outage
        t = day.plan.seconds_of(arrival.t)
        assert outage.start_s + 20.0 <= t <= outage.end_s - 60.0
        # No fix inside the outage, fixes on both sides of it.
        fixes = day.fixes()
        assert not [f for f in fixes if t - 1 <= day.plan.seconds_of(f.t) <= t + 1]
        assert any(day.plan.seconds_of(f.t) < outage.start_s for f in fixes)
        assert any(day.plan.seconds_of(f.t) >= outage.end_s for f in fixes)
    # The same draw every time.
    again = list(arrivals_in_outages(itinerary, ["vexin-monday-on-time"], [AS_WRITTEN]))
    assert [d.plan.gps_outages for d in again] == [d.plan.gps_outages for d in days]
