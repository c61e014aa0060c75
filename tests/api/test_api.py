from __future__ import annotations

from datetime import UTC, datetime

import httpx

from ingest.store import Store
from protocol import GpsBatch, GpsSample
from tests.support.live import running_api


def test_positions_are_geojson_with_time_speed_and_heading(store: Store) -> None:
    t = datetime(2026, 11, 23, 9, 0, 5, tzinfo=UTC)
    store.save_batch(
        GpsBatch(
            vehicle="caux-01",
            seq=0,
            samples=[
                GpsSample(t=t, lat=49.6175, lon=0.7539, speed_mps=10.0, course_deg=12.5, fix_mode=3)
            ],
        ),
        t,
    )
    with running_api(store) as api:
        body = httpx.get(f"{api}/api/v1/positions").json()
        assert body["type"] == "FeatureCollection"
        (feature,) = body["features"]
        assert feature["type"] == "Feature"
        assert feature["geometry"] == {"type": "Point", "coordinates": [0.7539, 49.6175]}
        props = feature["properties"]
        assert props["vehicle"] == "caux-01"
        assert props["time"] == "2026-11-23T09:00:05Z"
        assert props["speed_kmh"] == 36.0
        assert props["heading_deg"] == 12.5

        vehicles = httpx.get(f"{api}/api/v1/vehicles").json()
        assert [v["id"] for v in vehicles] == ["caux-01", "vexin-01"]
        assert vehicles[1]["last_seen"] is None

        assert httpx.get(f"{api}/healthz").json() == {"status": "ok", "database": "ok"}
        page = httpx.get(f"{api}/")
        assert page.status_code == 200
        assert "/api/v1/positions" in page.text
        stops = httpx.get(f"{api}/api/v1/stops").json()
        assert any(s["id"] == "vesly" and s["radius_m"] == 150 for s in stops)
        assert httpx.get(f"{api}/api/v1/rejections?limit=0").status_code == 422
