"""The cold-chain report of one fridge over a run of local days: its daily records (a
missing day is shown as no data, never as fine), its alarms with who acknowledged them,
and the CSV files the pharmacy keeps."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from ingest.coldchain.daily import DayStatus, FridgeDay, daily_csv
from ingest.coldchain.rules import AlarmKind
from ingest.coldchain.storage import FridgeAlarmRecord, StoredFridgeDay
from ingest.local_days import LocalDay
from ingest.resolution import Celsius, Minutes
from ingest.settings import FridgeRules


class AckOut(BaseModel):
    by: str
    at: datetime
    comment: str | None

    @classmethod
    def of(cls, by: str | None, at: datetime | None, comment: str | None) -> AckOut | None:
        """The acknowledgement of an alert or alarm, if someone gave one."""
        if by is None or at is None:
            return None
        return cls(by=by, at=at, comment=comment)


class FridgeAlarmOut(BaseModel):
    id: int
    vehicle: str
    kind: AlarmKind
    key: str = Field(description="stable name: kind and start of the run")
    start: datetime
    end: datetime
    raised_at: datetime
    duration_min: Minutes
    peak_c: Celsius
    ongoing: bool
    cut_by_gap: bool
    withdrawn_at: datetime | None = Field(description="late data no longer shows this alarm")
    acknowledged: AckOut | None

    @classmethod
    def of(cls, a: FridgeAlarmRecord) -> FridgeAlarmOut:
        ack = AckOut.of(a.ack_by, a.ack_at, a.ack_comment)
        return cls(
            id=a.id,
            vehicle=a.vehicle,
            kind=a.kind,
            key=a.key,
            start=a.run_start,
            end=a.run_end,
            raised_at=a.raised_at,
            duration_min=a.duration.total_seconds() / 60,
            peak_c=a.peak_c,
            ongoing=a.ongoing,
            cut_by_gap=a.cut_by_gap,
            withdrawn_at=a.withdrawn_at,
            acknowledged=ack,
        )


class FridgeDayOut(BaseModel):
    date: date
    status: DayStatus
    recorded: bool = Field(description="false: no reading that day")
    complete: bool = Field(description="false: the day was still going on")
    samples: int
    min_c: Celsius | None
    max_c: Celsius | None
    in_range_min: Minutes
    above_min: Minutes
    below_min: Minutes
    no_data_min: Minutes
    excursions: int
    heat_alarm: bool
    freeze_alarm: bool
    early_warning: bool


class DayCounts(BaseModel):
    days: int
    in_range: int = Field(description="every minute observed and in range")
    incomplete: int = Field(description="in range while observed, with time without data")
    no_data: int
    with_warnings: int
    with_alarms: int


class ColdChainReport(BaseModel):
    vehicle: str
    operator: str
    label: str
    start: date = Field(serialization_alias="from")
    end: date = Field(serialization_alias="to")
    timezone: str
    rules: FridgeRules
    summary: DayCounts
    days: list[FridgeDayOut]
    alarms: list[FridgeAlarmOut]


def _minutes(d: timedelta) -> float:
    return d.total_seconds() / 60


def filled_days(
    stored: Sequence[StoredFridgeDay], first: date, last: date, zone: ZoneInfo, now: datetime
) -> list[tuple[FridgeDay, bool, bool]]:
    """Every day from ``first`` to ``last`` (not after today): (record, recorded, complete).

    A day without a record is no data for as much of it as has passed.
    """
    by_day = {s.record.day: s for s in stored}
    out: list[tuple[FridgeDay, bool, bool]] = []
    day = first
    while day <= last:
        local = LocalDay.of(day, zone)
        if local.start > now:
            break
        found = by_day.get(day)
        if found is not None:
            out.append((found.record, True, found.complete))
        else:
            observed = min(local.end, now) - local.start
            empty = FridgeDay(
                day=day,
                samples=0,
                min_c=None,
                max_c=None,
                in_range=timedelta(0),
                above=timedelta(0),
                below=timedelta(0),
                no_data=observed,
                excursions=0,
                heat_alarm=False,
                freeze_alarm=False,
                early_warning=False,
            )
            out.append((empty, False, now >= local.end))
        day += timedelta(days=1)
    return out


def day_counts(records: Iterable[FridgeDay]) -> DayCounts:
    statuses = [r.status for r in records]
    return DayCounts(
        days=len(statuses),
        in_range=statuses.count("ok"),
        incomplete=statuses.count("incomplete"),
        no_data=statuses.count("no_data"),
        with_warnings=statuses.count("warning"),
        with_alarms=statuses.count("alarm"),
    )


def coldchain_report(
    *,
    vehicle: str,
    operator: str,
    label: str,
    start: date,
    end: date,
    zone: ZoneInfo,
    rules: FridgeRules,
    stored_days: Sequence[StoredFridgeDay],
    alarms: Sequence[FridgeAlarmRecord],
    now: datetime,
) -> ColdChainReport:
    days = filled_days(stored_days, start, end, zone, now)
    return ColdChainReport(
        vehicle=vehicle,
        operator=operator,
        label=label,
        start=start,
        end=end,
        timezone=zone.key,
        rules=rules,
        summary=day_counts(r for r, _, _ in days),
        days=[
            FridgeDayOut(
                date=r.day,
                status=r.status,
                recorded=recorded,
                complete=complete,
                samples=r.samples,
                min_c=r.min_c,
                max_c=r.max_c,
                in_range_min=_minutes(r.in_range),
                above_min=_minutes(r.above),
                below_min=_minutes(r.below),
                no_data_min=_minutes(r.no_data),
                excursions=r.excursions,
                heat_alarm=r.heat_alarm,
                freeze_alarm=r.freeze_alarm,
                early_warning=r.early_warning,
            )
            for r, recorded, complete in days
        ],
        alarms=[FridgeAlarmOut.of(a) for a in alarms],
    )


def days_csv(report: ColdChainReport, zone: ZoneInfo) -> str:
    """The daily log in the cold-chain core's CSV layout."""
    records = [
        FridgeDay(
            day=d.date,
            samples=d.samples,
            min_c=d.min_c,
            max_c=d.max_c,
            in_range=timedelta(minutes=d.in_range_min),
            above=timedelta(minutes=d.above_min),
            below=timedelta(minutes=d.below_min),
            no_data=timedelta(minutes=d.no_data_min),
            excursions=d.excursions,
            heat_alarm=d.heat_alarm,
            freeze_alarm=d.freeze_alarm,
            early_warning=d.early_warning,
        )
        for d in report.days
    ]
    return daily_csv(records, fridge_id=report.vehicle, zone=zone)


ALARM_LOG_COLUMNS: Final = (
    "fridge",
    "alarm_id",
    "alarm",
    "start_utc",
    "end_utc",
    "start_local",
    "end_local",
    "raised_at_utc",
    "duration_min",
    "peak_c",
    "ongoing",
    "cut_by_gap",
    "withdrawn_at_utc",
    "acknowledged_by",
    "acknowledged_at_utc",
    "ack_comment",
    "key",
)


def _utc(t: datetime | None) -> str:
    return "" if t is None else t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _flag(b: bool) -> str:
    return "true" if b else "false"


def _text(value: str | None) -> str:
    # A cell starting with one of these is read as a formula by spreadsheets.
    if value and value[0] in "=+-@\t\r":
        return "'" + value
    return value or ""


def alarms_csv(alarms: Sequence[FridgeAlarmOut], zone: ZoneInfo) -> str:
    """The alarm log with acknowledgements (RFC 4180, header first)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(ALARM_LOG_COLUMNS)
    for a in alarms:
        ack = a.acknowledged
        writer.writerow(
            [
                a.vehicle,
                str(a.id),
                a.kind,
                _utc(a.start),
                _utc(a.end),
                a.start.astimezone(zone).isoformat(timespec="seconds"),
                a.end.astimezone(zone).isoformat(timespec="seconds"),
                _utc(a.raised_at),
                f"{a.duration_min:.1f}",
                f"{a.peak_c:.2f}",
                _flag(a.ongoing),
                _flag(a.cut_by_gap),
                _utc(a.withdrawn_at),
                _text(ack.by if ack else None),
                _utc(ack.at if ack else None),
                _text(ack.comment if ack else None),
                a.key,
            ]
        )
    return out.getvalue()
