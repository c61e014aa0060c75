"""Alerts raised and cleared as time-series points."""

from __future__ import annotations

from influxdb_client.client.write.point import Point

from ingest.alerts.records import AlertEvent, AlertRecord
from ingest.timeseries import line_at


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
