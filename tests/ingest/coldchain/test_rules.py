from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from ingest.coldchain.rules import ColdChainConfig, DataGap, Reading, assess
from protocol.models import FridgeSample

T0 = datetime(2026, 1, 6, 6, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
CONFIG = ColdChainConfig()


def minutes(temps: Sequence[float | None], start: datetime = T0) -> list[Reading]:
    """One reading a minute from ``start``."""
    return [Reading(start + i * MIN, temp) for i, temp in enumerate(temps)]


def kinds(readings: Sequence[Reading], config: ColdChainConfig = CONFIG) -> list[str]:
    return [a.kind for a in assess(readings, config).alarms]


def test_exactly_ten_hours_above_8_is_not_a_heat_alarm() -> None:
    # 600 readings at 9 °C hold from 06:00 to 16:00; the reading at 16:00 is back in range.
    exactly = minutes([5.0] + [9.0] * 600 + [5.0] * 10, start=T0 - MIN)
    assert kinds(exactly) == ["early_warning"]
    run = assess(exactly, CONFIG).alarms[0].run
    assert (run.start, run.end, run.duration) == (T0, T0 + 600 * MIN, timedelta(hours=10))


def test_one_minute_more_than_ten_hours_raises_the_heat_alarm() -> None:
    longer = minutes([9.0] * 601 + [5.0] * 10)
    alarms = {a.kind: a for a in assess(longer, CONFIG).alarms}
    assert set(alarms) == {"heat", "early_warning"}
    heat = alarms["heat"]
    assert heat.raised_at == T0 + 601 * MIN
    assert heat.run.duration == timedelta(hours=10, minutes=1)
    assert heat.peak_c == 9.0
    assert not heat.run.ongoing
    assert alarms["early_warning"].raised_at == T0 + 30 * MIN


def test_a_one_minute_dip_back_in_range_breaks_the_continuous_period() -> None:
    dipped = minutes([9.0] * 360 + [7.5] + [9.0] * 360 + [5.0])
    assert "heat" not in kinds(dipped)
    heat_runs = [a.run.duration for a in assess(dipped, CONFIG).alarms]
    assert heat_runs == [timedelta(hours=6), timedelta(hours=6)]
    # The same 12 hours without the dip is a heat alarm.
    assert "heat" in kinds(minutes([9.0] * 721 + [5.0]))


def test_freeze_at_exactly_minus_half_a_degree_for_60_minutes() -> None:
    sixty = minutes([-0.5] * 60 + [4.0])
    freeze = [a for a in assess(sixty, CONFIG).alarms if a.kind == "freeze"]
    assert len(freeze) == 1
    assert freeze[0].raised_at == T0 + 60 * MIN
    assert freeze[0].peak_c == -0.5
    assert kinds(minutes([-0.5] * 59 + [4.0])) == []
    # Just above the threshold is cold (an excursion below 2 °C) but not freezing.
    report = assess(minutes([-0.4] * 120 + [4.0]), CONFIG)
    assert report.alarms == ()
    assert [(e.direction, e.peak_c) for e in report.excursions] == [("low", -0.4)]


def test_data_gaps_are_reported_and_break_runs() -> None:
    # 6 h above 8 °C, two hours without data, 6 h above again.
    before = minutes([9.0] * 361)
    after = minutes([9.0] * 361 + [5.0], start=T0 + timedelta(hours=8))
    report = assess([*before, *after], CONFIG)
    assert report.gaps == (DataGap(T0 + timedelta(hours=6), T0 + timedelta(hours=8)),)
    assert "heat" not in [a.kind for a in report.alarms]
    first = next(a for a in report.alarms if a.run.start == T0)
    assert first.run.cut_by_gap
    assert first.run.end == T0 + timedelta(hours=6)


def test_a_sensor_without_a_reading_leaves_a_gap_when_long_enough() -> None:
    readings = minutes([5.0] * 10 + [None] * 20 + [5.0] * 10)
    report = assess(readings, CONFIG)
    assert report.gaps == (DataGap(T0 + 9 * MIN, T0 + 30 * MIN),)
    short = assess(minutes([5.0] * 10 + [None] * 5 + [5.0] * 10), CONFIG)
    assert short.gaps == ()


def test_excursions_must_last_longer_than_the_configured_duration() -> None:
    exactly = assess(minutes([5.0] + [8.5] * 15 + [5.0]), CONFIG)
    assert exactly.excursions == ()
    longer = assess(minutes([5.0] + [8.5] * 16 + [5.0]), CONFIG)
    assert [(e.direction, e.run.duration) for e in longer.excursions] == [("high", 16 * MIN)]
    # An excursion still going on at the last reading says so.
    ongoing = assess(minutes([5.0] + [1.0] * 30), CONFIG)
    assert [(e.direction, e.run.ongoing) for e in ongoing.excursions] == [("low", True)]


def test_the_early_warning_and_the_range_are_configurable() -> None:
    config = ColdChainConfig(
        low_c=15.0, high_c=25.0, early_warning_above_c=25.0, early_warning_after=10 * MIN
    )
    assert kinds(minutes([20.0] + [26.0] * 10 + [20.0]), config) == ["early_warning"]
    assert kinds(minutes([20.0] + [26.0] * 9 + [20.0]), config) == []


def test_protocol_fridge_samples_in_any_order_are_accepted() -> None:
    samples = [FridgeSample(t=T0 + i * MIN, temp_c=9.0 if i else 5.0) for i in range(40)]
    report = assess(reversed(samples), CONFIG)
    assert [a.kind for a in report.alarms] == ["early_warning"]
    assert report.alarms[0].key == "early_warning@2026-01-06T06:01:00+00:00"


def test_bad_settings_and_naive_times_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"low_c 8\.0 must be below high_c 2\.0"):
        ColdChainConfig(low_c=8.0, high_c=2.0)
    with pytest.raises(ValidationError, match="max_sample_spacing"):
        ColdChainConfig(max_sample_spacing=timedelta(0))
    with pytest.raises(ValueError, match="no time zone"):
        assess([Reading(datetime(2026, 1, 6, 6, 0), 5.0)], CONFIG)
    with pytest.raises(ValueError, match="not a number"):
        assess([Reading(T0, float("nan"))], CONFIG)
