"""Live view of the fleet, for fleet managers, coordinators and engineers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from api.auth import Principal, Role, require
from api.deps import get_store
from api.views import FeatureCollection, VehicleOut, positions_out, vehicles_out
from ingest.store import Store

router = APIRouter(prefix="/api/v1", tags=["fleet"])
Viewer = Annotated[Principal, Depends(require(Role.FLEET_MANAGER, Role.COORDINATOR, Role.ENGINEER))]
StoreDep = Annotated[Store, Depends(get_store)]


@router.get("/vehicles")
def list_vehicles(store: StoreDep, caller: Viewer) -> list[VehicleOut]:
    """The vehicles of the caller's operator: last contact, link state, auxiliary battery
    and fridge as last reported."""
    return vehicles_out(store.vehicles(), caller)


@router.get("/positions")
def positions(store: StoreDep, caller: Viewer) -> FeatureCollection:
    """Latest position of each vehicle, as a GeoJSON FeatureCollection (lon, lat)."""
    return positions_out(store.positions(), caller)


@router.get("/stops")
def list_stops(store: StoreDep, caller: Viewer) -> list[dict[str, Any]]:
    """The stops the caller's operator's vehicles use (centre and radius): depots,
    timetable and one-off visits; every stop for admins."""
    rows = store.stops() if caller.sees_all else store.stops(caller.operator or "")
    return [dict(r._mapping) for r in rows]
