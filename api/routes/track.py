"""A vehicle's day on the map: the track it drove (simplified for display) and its stays."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel

from api.auth import Principal, Role, require
from api.deps import get_clock, get_store
from api.scope import Day, itinerary_zone, local_today, visible_vehicle
from ingest.local_days import LocalDay
from ingest.queries.track import day_track
from ingest.store import Store

router = APIRouter(prefix="/api/v1", tags=["fleet"])
Viewer = Annotated[Principal, Depends(require(Role.FLEET_MANAGER, Role.COORDINATOR, Role.ENGINEER))]
StoreDep = Annotated[Store, Depends(get_store)]
KMH_PER_MPS = 3.6


class LineGeometry(BaseModel):
    type: Literal["LineString"] = "LineString"
    coordinates: list[tuple[float, float]]


class TrackProperties(BaseModel):
    vehicle: str
    date: date
    times: list[str]
    speeds_kmh: list[float | None]
    points_raw: int
    points: int


class TrackFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: Literal["track"] = "track"
    geometry: LineGeometry
    properties: TrackProperties


class StayGeometry(BaseModel):
    type: Literal["Point"] = "Point"
    coordinates: tuple[float, float]


class StayProperties(BaseModel):
    kind: Literal["stay"] = "stay"
    stop_id: str | None
    stop_name: str | None
    arrival: datetime
    departure: datetime | None
    visit_id: str | None


class StayFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    geometry: StayGeometry
    properties: StayProperties


class TrackCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[TrackFeature | StayFeature]


def _utc(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


@router.get("/vehicles/{vehicle_id}/track")
def vehicle_track(
    request: Request,
    vehicle_id: str,
    store: StoreDep,
    caller: Viewer,
    day: Annotated[
        Day | None, Query(alias="date", description="local date, YYYY-MM-DD; today by default")
    ] = None,
) -> TrackCollection:
    """The day's track as GeoJSON: a LineString (lon, lat) simplified for display, with
    the time (UTC) and speed of each point, and a Point for each stay the bus made at a
    stop, with the visit it made."""
    v = visible_vehicle(store, caller, vehicle_id)
    zone = itinerary_zone(store)
    clock = get_clock(request)
    wanted = day or local_today(clock.now(), zone)
    try:
        local = LocalDay.of(wanted, zone)
    except (OverflowError, ValueError):
        raise HTTPException(
            status_code=422,
            detail=f"{wanted} is at the end of the calendar: no track can be there",
        ) from None
    track = day_track(store, v.id, local)
    line = TrackFeature(
        geometry=LineGeometry(coordinates=[(p.lon, p.lat) for p in track.points]),
        properties=TrackProperties(
            vehicle=v.id,
            date=wanted,
            times=[_utc(p.t) for p in track.points],
            speeds_kmh=[
                None if p.speed_mps is None else round(p.speed_mps * KMH_PER_MPS, 1)
                for p in track.points
            ],
            points_raw=track.points_raw,
            points=len(track.points),
        ),
    )
    stays = [
        StayFeature(
            geometry=StayGeometry(coordinates=(s.lon, s.lat)),
            properties=StayProperties(
                stop_id=s.stop_id,
                stop_name=s.stop_name,
                arrival=s.arrival,
                departure=s.departure,
                visit_id=s.visit_id,
            ),
        )
        for s in track.stays
    ]
    return TrackCollection(features=[line, *stays])
