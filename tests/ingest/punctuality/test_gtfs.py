from __future__ import annotations

import csv
import zipfile
from collections.abc import Callable
from datetime import date, time
from pathlib import Path
from typing import Any

import pytest

from ingest.itinerary import (
    Calendar,
    CancelledDay,
    CancelledVisit,
    Change,
    ExtraVisit,
    Itinerary,
    Slot,
    load_itinerary,
)
from ingest.punctuality.gtfs import (
    GtfsError,
    GtfsTables,
    export_gtfs,
    format_gtfs_time,
    import_gtfs,
    parse_gtfs_time,
    read_gtfs,
    write_gtfs,
)
from ingest.punctuality.schedule import expand_schedule, schedule_rules

FIRST, LAST = date(2026, 1, 1), date(2026, 12, 31)
URL = "https://www.example.org/medicobus"


def visits(itinerary: Itinerary) -> list[tuple[str, str, Any, Any, bool]]:
    return [
        (v.vehicle, v.stop, v.scheduled_arrival, v.scheduled_departure, v.cancelled)
        for v in expand_schedule(itinerary, FIRST, LAST, schedule_rules(itinerary))
    ]


def running(itinerary: Itinerary) -> list[tuple[str, str, Any, Any, bool]]:
    return [v for v in visits(itinerary) if not v[4]]


def busy_year(itinerary: Itinerary) -> Itinerary:
    """Every kind of exception, a worked holiday and a slot at night on the DST Sundays."""
    night = Slot(vehicle="caux-01", weekday=7, stop="yvetot", arrive="01:30", depart="03:30")
    return itinerary.model_copy(
        update={
            "slots": [*itinerary.slots, night],
            "vehicles": [
                itinerary.vehicles[0],
                itinerary.vehicles[1].model_copy(update={"valid_from": date(2026, 2, 2)}),
            ],
            "calendar": Calendar(
                valid_from=date(2026, 1, 5),
                valid_until=date(2026, 12, 18),
                worked_holidays=[date(2026, 5, 8)],
            ),
            "cancelled_days": [
                CancelledDay(day=date(2026, 2, 10), reason="snow"),
                CancelledDay(day=date(2026, 3, 2), vehicle="vexin-01", reason="breakdown"),
            ],
            "cancelled_visits": [CancelledVisit(visit="caux-01:2026-03-04:terres-de-caux")],
            "changes": [
                Change(visit="vexin-01:2026-06-01:vesly", arrive=time(9, 30)),
                Change(visit="vexin-01:2026-06-02:gisors", stop="morgny"),
            ],
            "extra_visits": [
                ExtraVisit(
                    vehicle="vexin-01",
                    day=date(2026, 5, 14),
                    stop="vesly",
                    arrive=time(9),
                    depart=time(11),
                ),
                ExtraVisit(
                    vehicle="caux-01",
                    day=date(2026, 6, 6),
                    stop="yvetot",
                    arrive=time(10),
                    depart=time(12),
                ),
            ],
        }
    )


def read_csv(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_export_writes_the_required_files_and_fields(tmp_path: Path, itinerary: Itinerary) -> None:
    names = write_gtfs(export_gtfs(itinerary, FIRST, LAST, URL), tmp_path / "feed")
    assert set(names) >= {
        "agency.txt",
        "stops.txt",
        "routes.txt",
        "trips.txt",
        "stop_times.txt",
        "calendar.txt",
        "calendar_dates.txt",
    }
    feed = tmp_path / "feed"
    agency = read_csv(feed, "agency.txt")
    assert {a["agency_timezone"] for a in agency} == {"Europe/Paris"}
    assert {a["agency_url"] for a in agency} == {URL}
    assert {r["route_type"] for r in read_csv(feed, "routes.txt")} == {"3"}
    monday = [r for r in read_csv(feed, "calendar.txt") if r["service_id"] == "vexin-01-monday"]
    assert monday == [
        {
            "service_id": "vexin-01-monday",
            "monday": "1",
            "tuesday": "0",
            "wednesday": "0",
            "thursday": "0",
            "friday": "0",
            "saturday": "0",
            "sunday": "0",
            "start_date": "20260101",
            "end_date": "20261231",
        }
    ]
    times = [r for r in read_csv(feed, "stop_times.txt") if r["trip_id"] == "vexin-01-monday"]
    assert [(r["stop_id"], r["arrival_time"], r["departure_time"]) for r in times] == [
        ("vesly", "09:00:00", "12:00:00"),
        ("hacqueville", "14:00:00", "17:00:00"),
    ]
    assert [r["stop_sequence"] for r in times] == ["1", "2"]
    # Easter Monday 2026 (6 April) removes the Monday service; nothing is added.
    removed = {
        (r["service_id"], r["date"], r["exception_type"])
        for r in read_csv(feed, "calendar_dates.txt")
    }
    assert ("vexin-01-monday", "20260406", "2") in removed
    assert not any(kind == "1" for _, _, kind in removed)
    with (feed / "stops.txt").open("rb") as fh:
        assert not fh.read().startswith(b"\xef\xbb\xbf")


def test_exceptions_become_removed_and_added_services(itinerary: Itinerary) -> None:
    tables = export_gtfs(busy_year(itinerary), FIRST, LAST, URL)
    dates = {
        (r["service_id"], r["date"], r["exception_type"]) for r in tables["calendar_dates.txt"]
    }
    # The one-off change on 1 June: the weekly trip removed, a trip for that date added.
    assert ("vexin-01-monday", "20260601", "2") in dates
    assert ("vexin-01-20260601", "20260601", "1") in dates
    one_off = [r for r in tables["stop_times.txt"] if r["trip_id"] == "vexin-01-20260601"]
    assert [(r["stop_id"], r["arrival_time"]) for r in one_off] == [
        ("vesly", "09:30:00"),
        ("hacqueville", "14:00:00"),
    ]
    # The worked holiday (8 May, a Friday) runs as usual: no exception that day.
    assert not any(d == "20260508" for _, d, _ in dates)
    # On the night the clocks go forward, 01:30 is 02:30 after "noon minus 12 h".
    spring = [r for r in tables["stop_times.txt"] if r["trip_id"] == "caux-01-20260329"]
    assert [(r["arrival_time"], r["departure_time"]) for r in spring] == [("02:30:00", "03:30:00")]
    # And in autumn noon minus 12 h is 01:00 local: 01:30 local is 00:30.
    autumn = [r for r in tables["stop_times.txt"] if r["trip_id"] == "caux-01-20261025"]
    assert [(r["arrival_time"], r["departure_time"]) for r in autumn] == [("00:30:00", "03:30:00")]


@pytest.mark.parametrize("target", ["feed", "feed.zip"])
def test_round_trip_gives_the_same_stops_slots_and_visits(
    tmp_path: Path, itinerary: Itinerary, target: str
) -> None:
    original = busy_year(itinerary)
    write_gtfs(export_gtfs(original, FIRST, LAST, URL), tmp_path / target)
    if target.endswith(".zip"):
        with zipfile.ZipFile(tmp_path / target) as archive:
            assert "stop_times.txt" in archive.namelist()
    back = import_gtfs(read_gtfs(tmp_path / target), itinerary)

    assert back.stops == original.stops
    assert sorted(back.slots, key=repr) == sorted(original.slots, key=repr)
    assert back.calendar.valid_from is None or back.calendar.valid_from >= FIRST
    assert running(back) == running(original)
    assert back.calendar.worked_holidays == [date(2026, 5, 8)]
    assert back.calendar.skip_public_holidays


def test_plain_round_trip_keeps_validity_and_holidays(itinerary: Itinerary) -> None:
    back = import_gtfs(export_gtfs(itinerary, FIRST, LAST, URL), itinerary)
    assert back.calendar == Calendar(valid_from=FIRST, valid_until=LAST)
    assert back.cancelled_days == back.changes == back.extra_visits == []
    assert visits(back) == visits(itinerary)


def test_gtfs_times() -> None:
    assert parse_gtfs_time("9:05:00") == 9 * 3600 + 300
    assert parse_gtfs_time("25:35:00") == 25 * 3600 + 35 * 60
    assert format_gtfs_time(25 * 3600 + 35 * 60) == "25:35:00"
    for bad in ("9:5:00", "09:60:00", "nine", "-1:00:00"):
        with pytest.raises(GtfsError, match="not a GTFS time"):
            parse_gtfs_time(bad)


def minimal_feed(trip_times: tuple[str, str] = ("09:00:00", "12:00:00")) -> GtfsTables:
    return {
        "agency.txt": [
            {
                "agency_id": "doct-eure",
                "agency_name": "x",
                "agency_url": URL,
                "agency_timezone": "Europe/Paris",
            }
        ],
        "stops.txt": [
            {
                "stop_id": "lyons",
                "stop_name": "Lyons-la-Forêt",
                "stop_lat": "49.4",
                "stop_lon": "1.47",
            }
        ],
        "routes.txt": [{"route_id": "vexin-01", "route_short_name": "V", "route_type": "3"}],
        "trips.txt": [{"route_id": "vexin-01", "service_id": "tue", "trip_id": "t1"}],
        "stop_times.txt": [
            {
                "trip_id": "t1",
                "arrival_time": trip_times[0],
                "departure_time": trip_times[1],
                "stop_id": "lyons",
                "stop_sequence": "1",
            }
        ],
        "calendar.txt": [
            {
                "service_id": "tue",
                "monday": "0",
                "tuesday": "1",
                "wednesday": "0",
                "thursday": "0",
                "friday": "0",
                "saturday": "0",
                "sunday": "0",
                "start_date": "20260105",
                "end_date": "20260630",
            }
        ],
    }


def test_a_feed_from_elsewhere_gets_default_radius_and_keeps_the_fleet(
    itinerary: Itinerary,
) -> None:
    imported = import_gtfs(minimal_feed(), itinerary)
    lyons = imported.stop("lyons")
    assert (lyons.radius_m, lyons.name) == (150.0, "Lyons-la-Forêt")
    assert imported.stop("gisors") == itinerary.stop("gisors")  # a depot, not in the feed
    vexin = imported.vehicle("vexin-01")
    assert (vexin.valid_from, vexin.valid_until) == (date(2026, 1, 5), date(2026, 6, 30))
    assert imported.vehicle("caux-01") == itinerary.vehicle("caux-01")
    assert [(s.weekday, s.stop, s.arrive) for s in imported.slots] == [(2, "lyons", time(9))]


def past_midnight(f: GtfsTables) -> None:
    f["stop_times.txt"][0].update(arrival_time="23:30:00", departure_time="25:10:00")


def unknown_route(f: GtfsTables) -> None:
    f["routes.txt"][0]["route_id"] = f["trips.txt"][0]["route_id"] = "bus-9"


def odd_exception(f: GtfsTables) -> None:
    f["calendar_dates.txt"] = [{"service_id": "tue", "date": "20260106", "exception_type": "3"}]


def iso_date(f: GtfsTables) -> None:
    f["calendar.txt"][0]["start_date"] = "2026-01-05"


def unknown_stop(f: GtfsTables) -> None:
    f["stop_times.txt"][0]["stop_id"] = "nowhere"


def unknown_zone(f: GtfsTables) -> None:
    f["agency.txt"][0]["agency_timezone"] = "Mars/Olympus"


def no_dwell(f: GtfsTables) -> None:
    f["stop_times.txt"][0]["departure_time"] = "09:00:00"


def two_tours_a_day(f: GtfsTables) -> None:
    f["trips.txt"].append({"route_id": "vexin-01", "service_id": "tue", "trip_id": "t1b"})
    f["stop_times.txt"].append({**f["stop_times.txt"][0], "trip_id": "t1b"})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (past_midnight, "past midnight"),
        (unknown_route, "route 'bus-9' is not a vehicle"),
        (odd_exception, "exception_type '3'"),
        (iso_date, "not a date like 20261123"),
        (unknown_stop, "unknown stop 'nowhere'"),
        (unknown_zone, "unknown time zone"),
        (no_dwell, "not after the arrival"),
        (two_tours_a_day, "both run on tuesdays"),
    ],
)
def test_feeds_that_cannot_become_an_itinerary_are_refused(
    itinerary: Itinerary, change: Callable[[GtfsTables], None], message: str
) -> None:
    feed = minimal_feed()
    change(feed)
    with pytest.raises(GtfsError, match=message):
        import_gtfs(feed, itinerary)


def test_reading_a_broken_feed_names_what_is_missing(tmp_path: Path) -> None:
    folder = tmp_path / "half"
    folder.mkdir()
    (folder / "agency.txt").write_text("agency_name\nx\n")
    with pytest.raises(GtfsError, match=r"missing stops\.txt, routes\.txt, trips\.txt"):
        read_gtfs(folder)
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(GtfsError, match="not a zip archive"):
        read_gtfs(tmp_path / "junk.zip")
    with pytest.raises(GtfsError, match="no such folder"):
        read_gtfs(tmp_path / "absent")


def test_export_needs_an_agency_url(itinerary: Itinerary) -> None:
    with pytest.raises(GtfsError, match="operator doct-eure has no url"):
        export_gtfs(itinerary, FIRST, LAST)


def test_cli_export_then_import(tmp_path: Path, itinerary_file: Path) -> None:
    from typer.testing import CliRunner

    from medicobus.cli import app

    runner = CliRunner()
    zipped = tmp_path / "medicobus-gtfs.zip"
    result = runner.invoke(
        app,
        [
            "timetable",
            "export-gtfs",
            str(itinerary_file),
            "-o",
            str(zipped),
            "--from",
            "2026-01-01",
            "--until",
            "2026-12-31",
            "--agency-url",
            URL,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2026-01-01 to 2026-12-31" in result.output
    out = tmp_path / "back.toml"
    result = runner.invoke(
        app,
        ["timetable", "import-gtfs", str(zipped), "--fleet", str(itinerary_file), "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "20 weekly slots" in result.output
    original = load_itinerary(itinerary_file)
    assert visits(load_itinerary(out)) == visits(original)

    missing_url = runner.invoke(
        app, ["timetable", "export-gtfs", str(itinerary_file), "-o", str(tmp_path / "x")]
    )
    assert missing_url.exit_code == 2
    assert "has no url" in missing_url.output
    absent = str(tmp_path / "none")
    bad = runner.invoke(
        app, ["timetable", "import-gtfs", absent, "--fleet", str(itinerary_file), "-o", str(out)]
    )
    assert bad.exit_code == 2
    assert "no such folder or zip file" in bad.output
