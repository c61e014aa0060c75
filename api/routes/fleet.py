"""Live view of the fleet, for fleet managers, coordinators and engineers."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from api.auth import Principal, Role, require
from api.deps import get_store
from ingest.resolution import Celsius, Coordinate, HeadingDeg, Percent, SpeedKmh, SpeedMps, Volts
from ingest.store import Position, Store, VehicleRow

KMH_PER_MPS = 3.6

router = APIRouter(prefix="/api/v1", tags=["fleet"])
Viewer = Annotated[Principal, Depends(require(Role.FLEET_MANAGER, Role.COORDINATOR, Role.ENGINEER))]
StoreDep = Annotated[Store, Depends(get_store)]


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


@router.get("/vehicles")
def list_vehicles(store: StoreDep, caller: Viewer) -> list[VehicleOut]:
    """The vehicles of the caller's operator: last contact, link state, auxiliary battery
    and fridge as last reported."""
    return vehicles_out(store.vehicles(), caller)


def vehicles_out(rows: Iterable[VehicleRow], caller: Principal) -> list[VehicleOut]:
    """What ``GET /vehicles`` answers the caller, from the vehicles' rows."""
    return [VehicleOut(**v.__dict__) for v in rows if caller.sees(v.operator)]


@router.get("/positions")
def positions(store: StoreDep, caller: Viewer) -> FeatureCollection:
    """Latest position of each vehicle, as a GeoJSON FeatureCollection (lon, lat)."""
    return positions_out(store.positions(), caller)


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


@router.get("/stops")
def list_stops(store: StoreDep, caller: Viewer) -> list[dict[str, Any]]:
    """The stops the caller's operator's vehicles use (centre and radius): depots,
    timetable and one-off visits; every stop for admins."""
    rows = store.stops() if caller.sees_all else store.stops(caller.operator or "")
    return [dict(r._mapping) for r in rows]
