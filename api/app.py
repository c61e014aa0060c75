"""REST endpoints for live positions and vehicles, and the dashboard's static page."""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from ingest.store import Store

KMH_PER_MPS = 3.6


class VehicleOut(BaseModel):
    id: str
    operator: str
    label: str
    traction: str
    last_seen: datetime | None
    online: bool | None


class PointGeometry(BaseModel):
    type: Literal["Point"] = "Point"
    coordinates: tuple[float, float]


class PositionProperties(BaseModel):
    vehicle: str
    label: str
    time: datetime
    speed_mps: float | None
    speed_kmh: float | None
    heading_deg: float | None
    online: bool | None
    last_seen: datetime | None


class PositionFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: str
    geometry: PointGeometry
    properties: PositionProperties


class FeatureCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[Any]


class RejectionOut(BaseModel):
    received_at: datetime
    topic: str
    reason: str
    detail: str
    payload_bytes: int
    payload_head: str


class RejectionsOut(BaseModel):
    counts: dict[str, int]
    recent: list[RejectionOut]


def create_app(store: Store) -> FastAPI:
    app = FastAPI(
        title="Médicobus telemetry",
        version="0.1.0",
        description="Live positions and health of mobile GP surgeries.",
    )

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        try:
            store.ping()
        except SQLAlchemyError as exc:
            raise HTTPException(status_code=503, detail=f"database unavailable: {exc}") from None
        return {"status": "ok", "database": "ok"}

    @app.get("/api/v1/vehicles", tags=["fleet"])
    def list_vehicles() -> list[VehicleOut]:
        return [VehicleOut(**v.__dict__) for v in store.vehicles()]

    @app.get("/api/v1/positions", tags=["fleet"])
    def positions() -> FeatureCollection:
        """Latest position of each vehicle, as a GeoJSON FeatureCollection (lon, lat)."""
        features = [
            PositionFeature(
                id=p.vehicle,
                geometry=PointGeometry(coordinates=(p.lon, p.lat)),
                properties=PositionProperties(
                    vehicle=p.vehicle,
                    label=p.label,
                    time=p.t,
                    speed_mps=p.speed_mps,
                    speed_kmh=None if p.speed_mps is None else round(p.speed_mps * KMH_PER_MPS, 1),
                    heading_deg=p.course_deg,
                    online=p.online,
                    last_seen=p.last_seen,
                ),
            )
            for p in store.positions()
        ]
        return FeatureCollection(features=features)

    @app.get("/api/v1/stops", tags=["fleet"])
    def list_stops() -> list[dict[str, Any]]:
        return [dict(r._mapping) for r in store.stops()]

    @app.get("/api/v1/rejections", tags=["engineering"])
    def list_rejections(limit: int = Query(default=50, ge=1, le=1000)) -> RejectionsOut:
        """Messages the ingest refused, counted by reason, with the most recent ones."""
        return RejectionsOut(
            counts=store.rejection_counts(),
            recent=[RejectionOut(**r.__dict__) for r in store.recent_rejections(limit)],
        )

    @app.get("/", include_in_schema=False)
    def dashboard() -> HTMLResponse:
        page = resources.files("api").joinpath("static/index.html").read_text(encoding="utf-8")
        return HTMLResponse(page)

    return app
