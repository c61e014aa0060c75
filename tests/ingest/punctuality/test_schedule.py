from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from ingest.itinerary import Itinerary, Slot
from ingest.punctuality.schedule import (
    DayCancellation,
    ExtraVisit,
    Period,
    ScheduleError,
    ScheduleRules,
    Visit,
    VisitCancellation,
    VisitChange,
    expand_schedule,
    local_to_utc,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def by_id(visits: list[Visit]) -> dict[str, Visit]:
    return {v.id: v for v in visits}


def with_slots(itinerary: Itinerary, *slots: Slot) -> Itinerary:
    return itinerary.model_copy(update={"slots": [*itinerary.slots, *slots]})


def test_one_week_of_vexin_in_winter(itinerary: Itinerary) -> None:
    visits = expand_schedule(
        itinerary, date(2026, 11, 23), date(2026, 11, 29), vehicles=["vexin-01"]
    )

    assert len(visits) == 10
    vesly = visits[0]
    assert vesly == Visit(
        id="vexin-01:2026-11-23:vesly",
        vehicle="vexin-01",
        stop="vesly",
        day=date(2026, 11, 23),
        scheduled_arrival=utc(2026, 11, 23, 8, 0),
        scheduled_departure=utc(2026, 11, 23, 11, 0),
    )
    assert [v.scheduled_arrival for v in visits] == sorted(v.scheduled_arrival for v in visits)
    assert all(v.scheduled_arrival.tzinfo is UTC for v in visits)
    assert len({v.id for v in visits}) == 10
    assert not any(v.cancelled for v in visits)


def test_whole_fleet_is_expanded_by_default(itinerary: Itinerary) -> None:
    visits = expand_schedule(itinerary, date(2026, 11, 23), date(2026, 11, 23))
    assert {v.vehicle for v in visits} == {"vexin-01", "caux-01"}
    assert len(visits) == 4


def test_spring_forward_last_sunday_of_march_2026(itinerary: Itinerary) -> None:
    night = Slot(vehicle="vexin-01", weekday=7, stop="gisors", arrive="01:30", depart="03:30")
    skipped = Slot(vehicle="caux-01", weekday=7, stop="yvetot", arrive="02:30", depart="04:00")
    visits = by_id(
        expand_schedule(with_slots(itinerary, night, skipped), date(2026, 3, 27), date(2026, 3, 30))
    )

    assert visits["vexin-01:2026-03-27:hacqueville"].scheduled_arrival == utc(2026, 3, 27, 8, 0)
    assert visits["vexin-01:2026-03-30:vesly"].scheduled_arrival == utc(2026, 3, 30, 7, 0)
    sunday = visits["vexin-01:2026-03-29:gisors"]
    assert sunday.scheduled_arrival == utc(2026, 3, 29, 0, 30)  # 01:30 CET
    assert sunday.scheduled_departure == utc(2026, 3, 29, 1, 30)  # 03:30 CEST
    assert sunday.scheduled_departure - sunday.scheduled_arrival == timedelta(hours=1)
    # 02:30 does not exist that night: read as 03:30 CEST.
    assert visits["caux-01:2026-03-29:yvetot"].scheduled_arrival == utc(2026, 3, 29, 1, 30)


def test_fall_back_last_sunday_of_october_2026(itinerary: Itinerary) -> None:
    night = Slot(vehicle="vexin-01", weekday=7, stop="gisors", arrive="01:30", depart="03:30")
    twice = Slot(vehicle="caux-01", weekday=7, stop="yvetot", arrive="02:30", depart="04:00")
    visits = by_id(
        expand_schedule(with_slots(itinerary, night, twice), date(2026, 10, 23), date(2026, 10, 26))
    )

    assert visits["vexin-01:2026-10-23:hacqueville"].scheduled_arrival == utc(2026, 10, 23, 7, 0)
    assert visits["vexin-01:2026-10-26:vesly"].scheduled_arrival == utc(2026, 10, 26, 8, 0)
    sunday = visits["vexin-01:2026-10-25:gisors"]
    assert sunday.scheduled_arrival == utc(2026, 10, 24, 23, 30)  # 01:30 CEST
    assert sunday.scheduled_departure == utc(2026, 10, 25, 2, 30)  # 03:30 CET
    assert sunday.scheduled_departure - sunday.scheduled_arrival == timedelta(hours=3)
    assert sunday.day == date(2026, 10, 25)
    # 02:30 happens twice that night: the first one, still summer time.
    assert visits["caux-01:2026-10-25:yvetot"].scheduled_arrival == utc(2026, 10, 25, 0, 30)


def test_local_to_utc_keeps_local_hours_across_the_year() -> None:
    from zoneinfo import ZoneInfo

    paris = ZoneInfo("Europe/Paris")
    assert local_to_utc(date(2026, 1, 15), time(9, 0), paris) == utc(2026, 1, 15, 8, 0)
    assert local_to_utc(date(2026, 7, 15), time(9, 0), paris) == utc(2026, 7, 15, 7, 0)


@pytest.mark.parametrize(
    ("day", "holiday", "stops"),
    [
        (date(2026, 5, 14), "Ascension", {"gisors", "vesly"}),
        (date(2026, 5, 25), "Lundi de Pentecôte", {"vesly", "hacqueville"}),
        (date(2026, 11, 11), "Armistice 1918", {"hebecourt", "morgny"}),
    ],
)
def test_public_holidays_cancel_the_weekly_visits(
    itinerary: Itinerary, day: date, holiday: str, stops: set[str]
) -> None:
    visits = expand_schedule(itinerary, day, day, vehicles=["vexin-01"])
    assert {v.stop for v in visits} == stops
    assert all(v.cancelled_reason == f"public holiday: {holiday}" for v in visits)

    worked = expand_schedule(
        itinerary, day, day, ScheduleRules(worked_holidays=frozenset({day})), ["vexin-01"]
    )
    assert {v.stop for v in worked} == stops
    assert not any(v.cancelled for v in worked)

    ignored = expand_schedule(itinerary, day, day, ScheduleRules(skip_public_holidays=False))
    assert not any(v.cancelled for v in ignored)


def test_day_before_a_holiday_runs(itinerary: Itinerary) -> None:
    visits = expand_schedule(itinerary, date(2026, 5, 13), date(2026, 5, 13), vehicles=["vexin-01"])
    assert [v.cancelled for v in visits] == [False, False]


def test_validity_period_global_and_per_vehicle(itinerary: Itinerary) -> None:
    rules = ScheduleRules(
        validity=Period(first=date(2026, 11, 25)),
        vehicle_validity={"caux-01": Period(last=date(2026, 11, 23))},
    )
    visits = expand_schedule(itinerary, date(2026, 11, 23), date(2026, 11, 27), rules)
    vexin_days = {v.day for v in visits if v.vehicle == "vexin-01"}
    caux_days = {v.day for v in visits if v.vehicle == "caux-01"}
    assert vexin_days == {date(2026, 11, 25), date(2026, 11, 26), date(2026, 11, 27)}
    assert caux_days == {date(2026, 11, 23)}


def test_cancellations_of_a_day_and_of_one_visit(itinerary: Itinerary) -> None:
    rules = ScheduleRules(
        day_cancellations=(
            DayCancellation(date(2026, 11, 23), "vexin-01", "breakdown"),
            DayCancellation(date(2026, 11, 24), None, "snow"),
        ),
        visit_cancellations=(VisitCancellation("caux-01:2026-11-23:terres-de-caux", "no GP"),),
    )
    visits = by_id(expand_schedule(itinerary, date(2026, 11, 23), date(2026, 11, 25), rules))

    assert visits["vexin-01:2026-11-23:vesly"].cancelled_reason == "breakdown"
    assert visits["vexin-01:2026-11-23:hacqueville"].cancelled_reason == "breakdown"
    assert visits["caux-01:2026-11-23:terres-de-caux"].cancelled_reason == "no GP"
    assert not visits["caux-01:2026-11-23:allouville-bellefosse"].cancelled
    assert {v.cancelled_reason for v in visits.values() if v.day == date(2026, 11, 24)} == {"snow"}
    assert not any(v.cancelled for v in visits.values() if v.day == date(2026, 11, 25))


def test_one_off_change_keeps_the_visit_id(itinerary: Itinerary) -> None:
    rules = ScheduleRules(
        changes=(
            VisitChange("vexin-01:2026-11-23:vesly", arrive=time(9, 30)),
            VisitChange("vexin-01:2026-11-23:hacqueville", stop="morgny", depart=time(18, 0)),
        )
    )
    visits = by_id(expand_schedule(itinerary, date(2026, 11, 23), date(2026, 11, 23), rules))

    vesly = visits["vexin-01:2026-11-23:vesly"]
    assert (vesly.scheduled_arrival, vesly.scheduled_departure) == (
        utc(2026, 11, 23, 8, 30),
        utc(2026, 11, 23, 11, 0),
    )
    assert vesly.changed
    moved = visits["vexin-01:2026-11-23:hacqueville"]
    assert moved.stop == "morgny"
    assert moved.scheduled_departure == utc(2026, 11, 23, 17, 0)
    assert not visits["caux-01:2026-11-23:terres-de-caux"].changed


def test_extra_visit_runs_even_on_a_holiday(itinerary: Itinerary) -> None:
    extra = ExtraVisit("vexin-01", date(2026, 5, 14), "vesly", time(9, 0), time(11, 0))
    visits = by_id(
        expand_schedule(
            itinerary, date(2026, 5, 14), date(2026, 5, 14), ScheduleRules(extra_visits=(extra,))
        )
    )
    # Thursday's timetable already has Vesly in the afternoon: the extra one is the second.
    assert visits["vexin-01:2026-05-14:vesly"].cancelled_reason == "public holiday: Ascension"
    morning = visits["vexin-01:2026-05-14:vesly#2"]
    assert morning.origin == "extra"
    assert not morning.cancelled
    assert morning.scheduled_arrival == utc(2026, 5, 14, 7, 0)


def test_same_stop_twice_a_day_gets_distinct_ids(itinerary: Itinerary) -> None:
    again = Slot(vehicle="vexin-01", weekday=1, stop="vesly", arrive="17:30", depart="19:00")
    ids = [
        v.id
        for v in expand_schedule(
            with_slots(itinerary, again),
            date(2026, 11, 23),
            date(2026, 11, 23),
            vehicles=["vexin-01"],
        )
    ]
    assert ids == [
        "vexin-01:2026-11-23:vesly",
        "vexin-01:2026-11-23:hacqueville",
        "vexin-01:2026-11-23:vesly#2",
    ]


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (ScheduleRules(changes=(VisitChange("x", stop="nowhere"),)), "unknown stop 'nowhere'"),
        (
            ScheduleRules(changes=(VisitChange("x", arrive=time(12), depart=time(11)),)),
            "depart 11:00:00 not after",
        ),
        (
            ScheduleRules(changes=(VisitChange("vexin-01:2026-11-23:vesly", arrive=time(12, 30)),)),
            "change of vexin-01:2026-11-23:vesly: depart 12:00:00 not after arrive 12:30:00",
        ),
        (ScheduleRules(changes=(VisitChange("x"), VisitChange("x"))), "two changes"),
        (
            ScheduleRules(
                extra_visits=(ExtraVisit("bus-9", date(2026, 1, 5), "vesly", time(9), time(10)),)
            ),
            "unknown vehicle 'bus-9'",
        ),
        (
            ScheduleRules(
                extra_visits=(ExtraVisit("vexin-01", date(2026, 1, 5), "vesly", time(9), time(9)),)
            ),
            "depart not after arrive",
        ),
        (ScheduleRules(day_cancellations=(DayCancellation(date(2026, 1, 5), "bus-9"),)), "bus-9"),
        (ScheduleRules(vehicle_validity={"bus-9": Period()}), "bus-9"),
    ],
)
def test_bad_rules_are_rejected(itinerary: Itinerary, rules: ScheduleRules, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        expand_schedule(itinerary, date(2026, 11, 23), date(2026, 11, 23), rules)


def test_bad_ranges_are_rejected(itinerary: Itinerary) -> None:
    with pytest.raises(ScheduleError, match=r"ends \(2026-11-22\) before it starts"):
        expand_schedule(itinerary, date(2026, 11, 23), date(2026, 11, 22))
    with pytest.raises(ScheduleError, match="unknown vehicles: bus-9"):
        expand_schedule(itinerary, date(2026, 11, 23), date(2026, 11, 23), vehicles=["bus-9"])
    with pytest.raises(ScheduleError, match="period ends"):
        Period(date(2026, 2, 1), date(2026, 1, 1))
