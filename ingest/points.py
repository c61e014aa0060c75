"""The one translator from what the domains record to time-series points (InfluxDB line
protocol): stored samples, visits, footprint and fridge days, fridge alarms and alerts.

Storage code hands its records to :func:`ingest.store.emit` in the transaction that
stores them; the store queues their points only when it was opened with this translator
(``Store.open(url, points=lines_of)``: the ingest with ``[influx]``, the API with
``timeseries``), so nothing below knows whether a time-series server is there. Every
function here is pure.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Final
from zoneinfo import ZoneInfo

from influxdb_client.client.write.point import Point
from influxdb_client.domain.write_precision import WritePrecision

from ingest.alerts.records import AlertChange, AlertEvent, AlertRecord
from ingest.coldchain.daily import FridgeDay
from ingest.coldchain.reconcile import StoredAlarm
from ingest.coldchain.records import FridgeAlarmChanged, FridgeDayRecorded
from ingest.footprint.energy import CARRIER_UNIT
from ingest.footprint.records import StoredFootprintDay
from ingest.local_days import LocalDay
from ingest.punctuality.ledger import VisitFacts, VisitStanding, VisitState
from protocol.streams import BY_NAME, STREAMS
from protocol.wire import Batch, Sample, fields

# Every stream's batch, from the registry: a new stream's samples become points unasked.
_BATCH_TYPES: Final = tuple(s.struct_batch for s in STREAMS)


def lines_of(record: object) -> list[str]:
    """The points of one record; a record of no known kind is an error, so that a new
    record is not silently left out of the time-series database."""
    if isinstance(record, _BATCH_TYPES):
        return lines_for(record)
    match record:
        case StoredFootprintDay():
            return [footprint_day_line(record)]
        case FridgeDayRecorded():
            return [
                fridge_day_line(
                    record.vehicle, record.record, record.zone, complete=record.complete
                )
            ]
        case FridgeAlarmChanged():
            return fridge_alarm_lines(record.vehicle, record.alarm, record.previous)
        case AlertChange():
            return [alert_line(record.event, record.alert)]
        case VisitStanding():
            return [visit_line(record.vehicle, record.stop, record.facts, record.state)]
    raise TypeError(f"no time-series point for {type(record).__name__}")


# --- samples ------------------------------------------------------------------------------


def lines_for(batch: Batch) -> list[str]:
    """The line-protocol points of one batch (pure)."""
    if batch.stream == "event":
        return [
            _point(batch, s).tag("kind", s.kind).field("detail", s.detail).to_line_protocol()
            for s in batch.samples
        ]
    if batch.stream == "status":
        return [
            _point(batch, s)
            .field("online", s.online)
            .field("queue_depth", s.queue_depth)
            .to_line_protocol()
            for s in batch.samples
        ]
    lines: list[str] = []
    names = fields(BY_NAME[batch.stream].struct_sample)[1:]
    for sample in batch.samples:
        point = _point(batch, sample)
        for name in names:
            value = getattr(sample, name)
            if isinstance(value, bool):
                point.field(name, value)
            elif isinstance(value, int | float):
                point.field(name, float(value))
        lines.append(point.to_line_protocol())
    return lines


def _point(batch: Batch, sample: Sample) -> Point:
    point = Point(batch.stream)
    point.tag("vehicle", batch.vehicle).time(sample.t, WritePrecision.MS)
    return point


# --- derived records ----------------------------------------------------------------------


def line_at(point: Point, t: datetime) -> str:
    """The point in line protocol, at ``t`` to the millisecond."""
    return str(point.time(t, WritePrecision.MS).to_line_protocol())


def day_start(day: date, zone: ZoneInfo | str) -> datetime:
    """Where a daily record's point is put: the local day's first instant."""
    return LocalDay.of(day, zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)).start


def alert_line(event: AlertEvent, alert: AlertRecord) -> str:
    """The point of an alert raised (at the condition's start) or cleared (at its end)
    (pure)."""
    cleared = alert.ended or alert.cleared_at or alert.since
    at = alert.since if event == "raised" else cleared
    point = Point("alert").tag("vehicle", alert.vehicle).tag("kind", alert.kind)
    point.field("state", event)
    point.field("active", event == "raised")
    point.field("alert_id", int(alert.id))
    point.field("subject", alert.subject)
    point.field("severity", alert.severity)
    return line_at(point, at)


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


_UNIT_SUFFIX: Final = {"L": "l", "kWh": "kwh"}


def footprint_day_line(day: StoredFootprintDay) -> str:
    """The point of one vehicle-day's footprint (pure)."""
    unit = _UNIT_SUFFIX[CARRIER_UNIT[day.traction_carrier]]
    point = (
        Point("footprint_day")
        .tag("vehicle", day.vehicle)
        .tag("carrier", day.traction_carrier)
        .tag("factor_set", day.factor_set.id)
    )
    point.field("distance_km", float(day.distance_km))
    point.field(f"traction_{unit}", float(day.traction_quantity))
    point.field("idling_s", day.idling.total_seconds())
    point.field(f"idling_{unit}", float(day.idling_quantity))
    point.field("idling_measured", day.idling_measured)
    point.field("aux_drawn_kwh", float(day.aux_drawn_kwh))
    point.field("aux_charged_kwh", float(day.aux_charged_kwh))
    if day.solar_kwh is not None:
        point.field("solar_kwh", float(day.solar_kwh))
    point.field("ttw_kgco2e", float(day.ttw_kgco2e))
    point.field("wtt_kgco2e", float(day.wtt_kgco2e))
    point.field("wtw_kgco2e", float(day.wtw_kgco2e))
    point.field("factor_set_version", day.factor_set.version)
    point.field("fixes_kept", int(day.fixes_kept))
    point.field("fixes_rejected", int(day.fixes_rejected))
    point.field("complete", day.complete)
    return line_at(point, day_start(day.day, day.zone))


HELD_STATUSES: Final = frozenset({"early", "on_time", "late"})


def visit_line(vehicle: str, stop: str, facts: VisitFacts, state: VisitState) -> str:
    """The point of one visit as it stands (pure)."""
    point = Point("visit").tag("vehicle", vehicle).tag("stop", stop)
    point.field("visit", facts.visit_id)
    point.field("status", state.status)
    point.field("held", state.status in HELD_STATUSES)
    point.field("confirmed", state.confirmed_arrival is not None)
    point.field("arrival_source", state.arrival_source)
    if state.delay is not None:
        point.field("delay_s", state.delay.total_seconds())
    if state.departure is not None:
        point.field(
            "departure_delay_s", (state.departure - facts.scheduled_departure).total_seconds()
        )
        if state.arrival is not None:
            point.field("dwell_s", (state.departure - state.arrival).total_seconds())
    point.field("patients_seen", state.patients_seen)
    return line_at(point, facts.scheduled_arrival)
