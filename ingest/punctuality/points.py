"""A visit as a time-series point."""

from __future__ import annotations

from typing import Final

from influxdb_client.client.write.point import Point

from ingest.punctuality.ledger import VisitFacts, VisitState
from ingest.timeseries import line_at

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
