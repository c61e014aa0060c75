"""The fridge's daily records and alarms as time-series points."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from influxdb_client.client.write.point import Point

from ingest.coldchain.daily import FridgeDay
from ingest.coldchain.reconcile import StoredAlarm
from ingest.timeseries import day_start, line_at


def fridge_day_line(
    vehicle: str, record: FridgeDay, zone: ZoneInfo | str, *, complete: bool
) -> str:
    """The point of one vehicle-day's fridge record (pure)."""
    point = Point("fridge_day").tag("vehicle", vehicle)
    point.field("status", record.status)
    point.field("samples", int(record.samples))
    if record.min_c is not None:
        point.field("min_c", float(record.min_c))
    if record.max_c is not None:
        point.field("max_c", float(record.max_c))
    point.field("in_range_min", record.in_range.total_seconds() / 60)
    point.field("above_min", record.above.total_seconds() / 60)
    point.field("below_min", record.below.total_seconds() / 60)
    point.field("no_data_min", record.no_data.total_seconds() / 60)
    point.field("excursions", int(record.excursions))
    point.field("heat_alarm", record.heat_alarm)
    point.field("freeze_alarm", record.freeze_alarm)
    point.field("early_warning", record.early_warning)
    point.field("complete", complete)
    return line_at(point, day_start(record.day, zone))


def _alarm_transitions(alarm: StoredAlarm) -> list[datetime]:
    return [alarm.raised_at] if alarm.ongoing else [alarm.raised_at, alarm.run_end]


def fridge_alarm_lines(
    vehicle: str, alarm: StoredAlarm, previous: StoredAlarm | None = None
) -> list[str]:
    """The points of one fridge alarm: its raise and, once its run is over, its clear;
    and, if it was stored before as ``previous`` (late readings moved or withdrew it),
    the points at the times that one had, with the alarm's state at those times (pure)."""
    times = set(_alarm_transitions(alarm))
    if previous is not None:
        times.update(_alarm_transitions(previous))
    lines: list[str] = []
    for t in sorted(times):
        active = (
            not alarm.withdrawn and alarm.raised_at <= t and (alarm.ongoing or t < alarm.run_end)
        )
        state = "withdrawn" if alarm.withdrawn else "raised" if active else "cleared"
        point = Point("fridge_alarm").tag("vehicle", vehicle).tag("kind", alarm.kind)
        point.field("state", state)
        point.field("active", active)
        point.field("alarm_id", int(alarm.id))
        point.field("peak_c", float(alarm.peak_c))
        point.field("duration_s", (alarm.run_end - alarm.run_start).total_seconds())
        point.field("ongoing", alarm.ongoing)
        point.field("cut_by_gap", alarm.cut_by_gap)
        lines.append(line_at(point, t))
    return lines
