"""Daily records of a fridge, like a 30-day logger's display, and their CSV export.

Days are local days in Europe/Paris by default (the operators' day, 23 or 25 hours long
when the clocks change); times in the export are given in UTC and in local time.

Time in a day is split into in range, above, below and no data; the last is every moment
not covered by a held reading (gaps, and the hours before the first or after the last
reading), so a day is never shown as in range on data it does not have.
"""

from __future__ import annotations

import csv
import io
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo

from ingest.coldchain.rules import ColdChainConfig, ColdChainReport, FridgeAlarm
from ingest.local_days import LocalDay, days_between, require_aware

PARIS: Final = ZoneInfo("Europe/Paris")
_FRIDGE_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

DayStatus = Literal["alarm", "warning", "no_data", "incomplete", "ok"]


@dataclass(frozen=True)
class FridgeDay:
    day: date
    samples: int
    min_c: float | None
    max_c: float | None
    in_range: timedelta
    above: timedelta
    below: timedelta
    no_data: timedelta
    excursions: int
    heat_alarm: bool
    freeze_alarm: bool
    early_warning: bool

    @property
    def status(self) -> DayStatus:
        """The day's worst state: an alarm outranks a warning, which outranks missing data."""
        if self.heat_alarm or self.freeze_alarm:
            return "alarm"
        if self.early_warning:
            return "warning"
        if self.in_range + self.above + self.below == timedelta(0):
            return "no_data"
        if self.no_data > timedelta(0):
            return "incomplete"
        return "ok"


def _alarm_on(alarm: FridgeAlarm, day: LocalDay) -> bool:
    """An alarm marks every day from the one it was raised to the one its run ended."""
    raised, end = alarm.raised_at, max(alarm.run.end, alarm.raised_at)
    return raised < day.end and (end > day.start or raised >= day.start)


def daily_records(
    report: ColdChainReport,
    config: ColdChainConfig,
    zone: ZoneInfo = PARIS,
    *,
    days: Iterable[date] | None = None,
    until: datetime | None = None,
) -> list[FridgeDay]:
    """One record per local day.

    ``days`` defaults to every day from the first reading to ``until``; ``until`` (the
    end of observation, e.g. now) defaults to the last reading, or without any reading to
    the end of the last day asked for: time after it is not yet observed, so it is not
    counted as missing either.

    An excursion counts once, on the day its run starts. A run is known to start where
    the report's readings do, so for a day to be told apart from one whose excursion
    began the evening before, ``report`` must hold the last reading before the day.
    """
    readings = report.timeline.readings
    if days is not None:
        local_days = [LocalDay.of(d, zone) for d in sorted(set(days))]
        if not local_days:
            return []
        if until is None:
            until = readings[-1].start if readings else local_days[-1].end
    else:
        if not readings:
            return []
        if until is None:
            until = readings[-1].start
        local_days = days_between(readings[0].start, until, zone)
    until = require_aware(until, "until")
    starts = [r.start for r in readings]

    records: list[FridgeDay] = []
    for day in local_days:
        window_end = min(day.end, until)
        in_range = above = below = timedelta(0)
        temps: list[float] = []
        first = max(0, bisect_right(starts, day.start) - 1)
        last = bisect_left(starts, window_end)
        for r in readings[first : last + 1]:
            if day.start <= r.start <= window_end and r.start < day.end:
                temps.append(r.temp_c)
            a, b = max(r.start, day.start), min(r.end, window_end)
            if a >= b:
                continue
            if r.temp_c > config.high_c:
                above += b - a
            elif r.temp_c < config.low_c:
                below += b - a
            else:
                in_range += b - a
        observed = max(window_end - day.start, timedelta(0))
        alarms = [a for a in report.alarms if _alarm_on(a, day)]
        records.append(
            FridgeDay(
                day=day.day,
                samples=len(temps),
                min_c=min(temps) if temps else None,
                max_c=max(temps) if temps else None,
                in_range=in_range,
                above=above,
                below=below,
                no_data=observed - (in_range + above + below),
                excursions=sum(1 for e in report.excursions if day.start <= e.run.start < day.end),
                heat_alarm=any(a.kind == "heat" for a in alarms),
                freeze_alarm=any(a.kind == "freeze" for a in alarms),
                early_warning=any(a.kind == "early_warning" for a in alarms),
            )
        )
    return records


@dataclass(frozen=True)
class DailyAlarms:
    """One line of a logger's alarm history."""

    day: date
    heat_alarm: bool
    freeze_alarm: bool
    early_warning: bool
    status: DayStatus


def alarm_history(
    records: Sequence[FridgeDay], last_day: date, days: int = 30
) -> list[DailyAlarms]:
    """The ``days`` days ending with ``last_day``, oldest first; a day without a record
    is shown as no data, never as fine."""
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    by_day = {r.day: r for r in records}
    history: list[DailyAlarms] = []
    for i in range(days - 1, -1, -1):
        d = last_day - timedelta(days=i)
        r = by_day.get(d)
        if r is None:
            history.append(DailyAlarms(d, False, False, False, "no_data"))
        else:
            history.append(DailyAlarms(d, r.heat_alarm, r.freeze_alarm, r.early_warning, r.status))
    return history


# --- CSV -------------------------------------------------------------------------------

DAILY_COLUMNS: Final = (
    "fridge",
    "date",
    "timezone",
    "status",
    "samples",
    "min_c",
    "max_c",
    "in_range_min",
    "above_min",
    "below_min",
    "no_data_min",
    "excursions",
    "heat_alarm",
    "freeze_alarm",
    "early_warning",
)


def _fridge(fridge_id: str) -> str:
    # Also keeps a spreadsheet from reading the cell as a formula.
    if not _FRIDGE_ID.match(fridge_id):
        raise ValueError(f"fridge id {fridge_id!r}: use letters, digits, '.', '_' or '-'")
    return fridge_id


def _minutes(d: timedelta) -> str:
    return f"{d.total_seconds() / 60:.1f}"


def _temp(c: float | None) -> str:
    return "" if c is None else f"{c:.2f}"


def _flag(b: bool) -> str:
    return "true" if b else "false"


def _utc(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _local(t: datetime, zone: ZoneInfo) -> str:
    return t.astimezone(zone).isoformat(timespec="seconds")


def _write(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue()


def daily_csv(records: Iterable[FridgeDay], *, fridge_id: str, zone: ZoneInfo = PARIS) -> str:
    """Daily records as CSV (RFC 4180, header first); durations in minutes."""
    fridge = _fridge(fridge_id)
    return _write(
        DAILY_COLUMNS,
        (
            (
                fridge,
                r.day.isoformat(),
                zone.key,
                r.status,
                str(r.samples),
                _temp(r.min_c),
                _temp(r.max_c),
                _minutes(r.in_range),
                _minutes(r.above),
                _minutes(r.below),
                _minutes(r.no_data),
                str(r.excursions),
                _flag(r.heat_alarm),
                _flag(r.freeze_alarm),
                _flag(r.early_warning),
            )
            for r in records
        ),
    )
