"""Validity dates and exceptions written in the itinerary file, fed to the schedule."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from ingest.itinerary import (
    Itinerary,
    ItineraryError,
    itinerary_toml,
    load_itinerary,
    parse_visit_id,
)
from ingest.punctuality.schedule import expand_schedule, schedule_rules

EXCEPTIONS = """
[calendar]
valid_from = 2026-09-01
valid_until = 2027-06-30
worked_holidays = [2026-11-11]

[[cancelled_day]]
day = 2026-11-24
reason = "snow"

[[cancelled_day]]
day = 2026-11-23
vehicle = "caux-01"

[[cancelled_visit]]
visit = "vexin-01:2026-11-26:vesly"
reason = "GP on leave"

[[change]]
visit = "vexin-01:2026-11-23:vesly"
arrive = "09:30"

[[change]]
visit = "vexin-01:2026-11-27:hacqueville"
stop = "morgny"

[[extra_visit]]
vehicle = "vexin-01"
day = 2026-11-28
stop = "gisors"
arrive = "10:00"
depart = "12:00"
"""


def with_exceptions(tmp_path: Path, itinerary_file: Path, extra: str = EXCEPTIONS) -> Path:
    path = tmp_path / "itineraries.toml"
    path.write_text(itinerary_file.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return path


def test_the_shared_file_stays_valid_with_no_exceptions(itinerary: Itinerary) -> None:
    rules = schedule_rules(itinerary)
    assert rules.validity.first is None and rules.day_cancellations == ()
    assert rules.skip_public_holidays


def test_exceptions_in_the_file_shape_the_visits(tmp_path: Path, itinerary_file: Path) -> None:
    itinerary = load_itinerary(with_exceptions(tmp_path, itinerary_file))
    visits = {
        v.id: v
        for v in expand_schedule(
            itinerary, date(2026, 11, 9), date(2026, 11, 30), schedule_rules(itinerary)
        )
    }
    assert not visits["vexin-01:2026-11-11:hebecourt"].cancelled  # Armistice, worked
    assert visits["vexin-01:2026-11-24:gisors"].cancelled_reason == "snow"
    assert visits["caux-01:2026-11-24:yvetot"].cancelled_reason == "snow"
    assert visits["caux-01:2026-11-23:terres-de-caux"].cancelled_reason == "day cancelled"
    assert not visits["vexin-01:2026-11-23:hacqueville"].cancelled
    assert visits["vexin-01:2026-11-26:vesly"].cancelled_reason == "GP on leave"
    moved = visits["vexin-01:2026-11-23:vesly"]
    assert moved.changed and moved.scheduled_arrival == datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
    assert visits["vexin-01:2026-11-27:hacqueville"].stop == "morgny"
    assert visits["vexin-01:2026-11-28:gisors"].origin == "extra"
    before = expand_schedule(
        itinerary, date(2026, 8, 31), date(2026, 8, 31), schedule_rules(itinerary)
    )
    assert before == []  # before valid_from


def test_the_file_round_trips_through_toml(tmp_path: Path, itinerary_file: Path) -> None:
    itinerary = load_itinerary(with_exceptions(tmp_path, itinerary_file))
    again = Itinerary.model_validate(tomllib.loads(itinerary_toml(itinerary)))
    assert again == itinerary


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[[cancelled_day]]\nday = 2026-11-24\nvehicle = "bus-9"\n', "unknown vehicle 'bus-9'"),
        ('[[cancelled_visit]]\nvisit = "vexin-01:24/11:vesly"\n', "is not a visit id"),
        ('[[cancelled_visit]]\nvisit = "vexin-01:2026-11-24:nowhere"\n', "unknown stop"),
        ('[[change]]\nvisit = "vexin-01:2026-11-23:vesly"\n', "changes nothing"),
        (
            '[[change]]\nvisit = "vexin-01:2026-11-23:vesly"\narrive = "13:00"\ndepart = "12:00"\n',
            "not after arrive",
        ),
        ('[[change]]\nvisit = "vexin-01:2026-11-23:vesly"\nstop = "atlantis"\n', "atlantis"),
        (
            '[[extra_visit]]\nvehicle = "vexin-01"\nday = 2026-11-28\nstop = "gisors"\n'
            'arrive = "10h"\ndepart = "12:00"\n',
            "is not a time like 09:30",
        ),
        ("[calendar]\nvalid_from = 2027-01-01\nvalid_until = 2026-01-01\n", "ends"),
        ("[calendar]\nskip_holidays = true\n", "calendar.skip_holidays"),
        (
            '[[change]]\nvisit = "vexin-01:2026-11-23:vesly"\narrive = "09:10"\n' * 2,
            "two changes of the same visit",
        ),
    ],
)
def test_bad_exceptions_name_the_entry(
    tmp_path: Path, itinerary_file: Path, extra: str, message: str
) -> None:
    with pytest.raises(ItineraryError, match=message):
        load_itinerary(with_exceptions(tmp_path, itinerary_file, "\n" + extra))


def test_visit_ids() -> None:
    assert parse_visit_id("vexin-01:2026-11-23:vesly#2") == (
        "vexin-01",
        date(2026, 11, 23),
        "vesly",
    )
    for bad in ("vexin-01:2026-11-23", "vexin-01:2026-13-01:vesly", "v:2026-11-23:vesly#1"):
        with pytest.raises(ValueError, match="visit"):
            parse_visit_id(bad)
