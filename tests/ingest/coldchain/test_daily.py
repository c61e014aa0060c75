from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ingest.coldchain.daily import (
    DAILY_COLUMNS,
    alarm_history,
    daily_csv,
    daily_records,
)
from ingest.coldchain.rules import ColdChainConfig, Reading, assess

PARIS = ZoneInfo("Europe/Paris")
CONFIG = ColdChainConfig()
MIN = timedelta(minutes=1)
H = timedelta(hours=1)
# Local midnight of Tuesday 6 January 2026 (UTC+1).
MIDNIGHT = datetime(2026, 1, 5, 23, 0, tzinfo=UTC)


def every(start: datetime, step: timedelta, temps: list[float]) -> list[Reading]:
    return [Reading(start + i * step, t) for i, t in enumerate(temps)]


def test_a_day_splits_into_in_range_above_below_and_no_data() -> None:
    # 00:00-01:00 local at 5 °C, 01:00-01:30 at 9 °C, 01:30-02:00 at 1 °C, back to 5 at 02:00,
    # then nothing until 04:00, then 5 °C until 05:00.
    readings = [
        *every(MIDNIGHT, MIN, [5.0] * 60 + [9.0] * 30 + [1.0] * 30 + [5.0]),
        *every(MIDNIGHT + 4 * H, MIN, [5.0] * 61),
    ]
    report = assess(readings, CONFIG)
    [day] = daily_records(report, CONFIG, PARIS)
    assert day.day == date(2026, 1, 6)
    assert (day.min_c, day.max_c, day.samples) == (1.0, 9.0, 182)
    assert day.in_range == 2 * H
    assert day.above == 30 * MIN
    assert day.below == 30 * MIN
    # The gap 02:00-04:00 is no data, never in range.
    assert day.no_data == 2 * H
    assert day.excursions == 2
    assert day.early_warning and not day.heat_alarm
    assert day.status == "warning"


def test_a_complete_day_in_range_is_ok_and_an_unobserved_day_is_no_data() -> None:
    readings = every(MIDNIGHT, 10 * MIN, [5.0] * (24 * 6 + 1))
    report = assess(readings, CONFIG)
    days = daily_records(
        report, CONFIG, PARIS, days=[date(2026, 1, 6), date(2026, 1, 8)], until=MIDNIGHT + 72 * H
    )
    assert [d.status for d in days] == ["ok", "no_data"]
    assert days[0].in_range == 24 * H and days[0].no_data == timedelta(0)
    assert days[1].no_data == 24 * H and days[1].min_c is None
    # Asked about a day with no reading at all, the answer is no data, not nothing.
    [empty] = daily_records(assess([], CONFIG), CONFIG, PARIS, days=[date(2026, 1, 6)])
    assert (empty.status, empty.no_data) == ("no_data", 24 * H)


def test_a_day_in_range_with_a_gap_is_incomplete_not_ok() -> None:
    readings = [*every(MIDNIGHT, MIN, [5.0] * 61), *every(MIDNIGHT + 3 * H, MIN, [5.0] * 61)]
    [day] = daily_records(assess(readings, CONFIG), CONFIG, PARIS)
    assert (day.in_range, day.no_data, day.status) == (2 * H, 2 * H, "incomplete")


def test_the_day_the_clocks_go_forward_is_23_hours_long() -> None:
    # 29 March 2026 in Paris: from 23:00 UTC on the 28th to 22:00 UTC on the 29th.
    start = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    report = assess(every(start, 10 * MIN, [5.0] * (23 * 6 + 1)), CONFIG)
    [day] = daily_records(report, CONFIG, PARIS, days=[date(2026, 3, 29)])
    assert day.in_range == 23 * H
    assert day.status == "ok"


def test_a_heat_alarm_marks_every_day_it_lasts_and_the_history_shows_30_days() -> None:
    # Above 8 °C from 20:00 local on the 6th to 10:00 on the 7th, a reading every 10 min:
    # the heat alarm is raised at 06:10 on the 7th, the early warning at 20:30 on the 6th.
    readings = every(MIDNIGHT, 10 * MIN, [5.0] * 120 + [9.0] * 84 + [5.0] * 30)
    report = assess(readings, CONFIG)
    [heat] = [a for a in report.alarms if a.kind == "heat"]
    assert heat.raised_at == MIDNIGHT + 30 * H + 10 * MIN
    assert heat.run.duration == 14 * H
    records = daily_records(report, CONFIG, PARIS)
    assert [(r.day.day, r.heat_alarm, r.early_warning) for r in records] == [
        (6, False, True),
        (7, True, True),
    ]
    history = alarm_history(records, last_day=date(2026, 1, 8))
    assert len(history) == 30
    assert history[0].day == date(2025, 12, 10)
    assert [(h.day.day, h.status) for h in history[-3:]] == [
        (6, "warning"),
        (7, "alarm"),
        (8, "no_data"),
    ]
    assert sum(h.heat_alarm for h in history) == 1


def test_daily_csv_has_a_header_and_one_row_per_day() -> None:
    # 00:00-19:00 local at 5 °C, 19:00-24:00 at 9 °C, then 5 °C until 08:10 on the 7th.
    readings = every(MIDNIGHT, 10 * MIN, [5.0] * 114 + [9.0] * 30 + [5.0] * 50)
    report = assess(readings, CONFIG)
    records = daily_records(report, CONFIG, PARIS)
    text = daily_csv(records, fridge_id="vexin-01.fridge")
    assert text.endswith("\r\n")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(rows[0]) == DAILY_COLUMNS
    assert len(rows) == 1 + len(records) == 3
    first = dict(zip(DAILY_COLUMNS, rows[1], strict=True))
    assert first == {
        "fridge": "vexin-01.fridge",
        "date": "2026-01-06",
        "timezone": "Europe/Paris",
        "status": "warning",
        "samples": "144",
        "min_c": "5.00",
        "max_c": "9.00",
        "in_range_min": "1140.0",
        "above_min": "300.0",
        "below_min": "0.0",
        "no_data_min": "0.0",
        "excursions": "1",
        "heat_alarm": "false",
        "freeze_alarm": "false",
        "early_warning": "true",
    }


@pytest.mark.parametrize("bad", ["", "=cmd()", "fridge 1", "x" * 65])
def test_a_fridge_id_that_could_break_the_csv_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="fridge id"):
        daily_csv([], fridge_id=bad)
