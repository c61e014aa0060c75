"""What the API answers about vehicles, positions and alerts, shared by their routes and
the live feed."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from itertools import islice
from typing import Any, Literal

from pydantic import BaseModel, Field

from api.auth import Principal
from ingest.alerts.records import AlertRecord
from ingest.alerts.rules import AlertKind, Severity
from ingest.reports.coldchain import AckOut
from ingest.resolution import Celsius, Coordinate, HeadingDeg, Percent, SpeedKmh, SpeedMps, Volts
from ingest.store import Position, VehicleRow

KMH_PER_MPS = 3.6
DEFAULT_LIMIT = 200


class VehicleOut(BaseModel):
    id: str
    operator: str
    label: str
    traction: str
    last_seen: datetime | None
    online: bool | None
    soc_pct: Percent | None = Field(description="auxiliary battery state of charge")
    battery_v: Volts | None
    energy_t: datetime | None
    fridge_temp_c: Celsius | None
    fridge_door_open: bool | None
    fridge_t: datetime | None


class PointGeometry(BaseModel):
    type: Literal["Point"] = "Point"
    coordinates: tuple[Coordinate, Coordinate]


class PositionProperties(BaseModel):
    vehicle: str
    operator: str
    label: str
    time: datetime
    speed_mps: SpeedMps | None
    speed_kmh: SpeedKmh | None
    heading_deg: HeadingDeg | None
    online: bool | None
    last_seen: datetime | None


class PositionFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: str
    geometry: PointGeometry
    properties: PositionProperties


class FeatureCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[PositionFeature]


def vehicles_out(rows: Iterable[VehicleRow], caller: Principal) -> list[VehicleOut]:
    """What ``GET /vehicles`` answers the caller, from the vehicles' rows."""
    return [VehicleOut(**v.__dict__) for v in rows if caller.sees(v.operator)]


def positions_out(rows: Iterable[Position], caller: Principal) -> FeatureCollection:
    """What ``GET /positions`` answers the caller, from the latest positions."""
    features = [
        PositionFeature(
            id=p.vehicle,
            geometry=PointGeometry(coordinates=(p.lon, p.lat)),
            properties=PositionProperties(
                vehicle=p.vehicle,
                operator=p.operator,
                label=p.label,
                time=p.t,
                speed_mps=p.speed_mps,
                speed_kmh=None if p.speed_mps is None else round(p.speed_mps * KMH_PER_MPS, 1),
                heading_deg=p.course_deg,
                online=p.online,
                last_seen=p.last_seen,
            ),
        )
        for p in rows
        if caller.sees(p.operator)
    ]
    return FeatureCollection(features=features)


class AlertOut(BaseModel):
    id: int
    vehicle: str
    kind: AlertKind
    subject: str
    severity: Severity
    message: str
    detail: dict[str, Any]
    since: datetime = Field(description="when the condition began, as the data shows")
    ended: datetime | None
    raised_at: datetime
    cleared_at: datetime | None
    active: bool
    acknowledged: AckOut | None

    @classmethod
    def of(cls, a: AlertRecord) -> AlertOut:
        ack = AckOut.of(a.ack_by, a.ack_at, a.ack_comment)
        return cls(
            id=a.id,
            vehicle=a.vehicle,
            kind=a.kind,
            subject=a.subject,
            severity=a.severity,
            message=a.message,
            detail=a.detail,
            since=a.since,
            ended=a.ended,
            raised_at=a.raised_at,
            cleared_at=a.cleared_at,
            active=a.active,
            acknowledged=ack,
        )


def active_alerts_out(records: Iterable[AlertRecord], caller: Principal) -> list[AlertOut]:
    """What ``GET /alerts?active=true`` answers the caller, from every active alert
    (newest first)."""
    mine = (a for a in records if a.active and caller.sees(a.operator))
    return [AlertOut.of(a) for a in islice(mine, DEFAULT_LIMIT)]
