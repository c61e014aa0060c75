from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingest.store import Store
from protocol import GpsBatch, GpsSample
from tests.support.live import running_api

T = datetime(2026, 11, 23, 9, 0, 5, tzinfo=UTC)


def put_position(store: Store, vehicle: str, lat: float, lon: float) -> None:
    store.save_batch(
        GpsBatch(
            vehicle=vehicle,
            seq=0,
            samples=[GpsSample(t=T, lat=lat, lon=lon, speed_mps=10.0, course_deg=12.5, fix_mode=3)],
        ),
        T,
    )


def test_positions_are_geojson_with_time_speed_and_heading(store: Store) -> None:
    put_position(store, "caux-01", 49.6175, 0.7539)
    with running_api(store) as api:
        body = api.get("/api/v1/positions").json()
        assert body["type"] == "FeatureCollection"
        (feature,) = body["features"]
        assert feature["type"] == "Feature"
        assert feature["geometry"] == {"type": "Point", "coordinates": [0.7539, 49.6175]}
        props = feature["properties"]
        assert props["vehicle"] == "caux-01"
        assert props["time"] == "2026-11-23T09:00:05Z"
        assert props["speed_kmh"] == 36.0
        assert props["heading_deg"] == 12.5

        vehicles = api.get("/api/v1/vehicles").json()
        assert [v["id"] for v in vehicles] == ["caux-01", "vexin-01"]
        assert vehicles[1]["last_seen"] is None

        assert api.get("/healthz").json() == {"status": "ok", "database": "ok"}
        page = api.get("/")
        assert page.status_code == 200
        assert 'src="/static/app/main.js"' in page.text
        script = api.get("/static/app/main.js")
        assert "javascript" in script.headers["content-type"]
        assert "/api/v1/positions" in script.text
        stops = api.get("/api/v1/stops").json()
        assert any(s["id"] == "vesly" and s["radius_m"] == 150 for s in stops)
        assert api.get("/api/v1/rejections?limit=0").status_code == 422


def test_callers_see_only_their_operators_vehicles(store: Store) -> None:
    put_position(store, "caux-01", 49.6175, 0.7539)
    put_position(store, "vexin-01", 49.2411, 1.6333)
    with running_api(store, token="fm-caux-token") as api:
        assert [f["id"] for f in api.get("/api/v1/positions").json()["features"]] == ["caux-01"]
        assert [v["id"] for v in api.get("/api/v1/vehicles").json()] == ["caux-01"]
    with running_api(store, token="coord-eure-token") as api:
        assert [f["id"] for f in api.get("/api/v1/positions").json()["features"]] == ["vexin-01"]


@pytest.mark.parametrize(
    ("token", "path", "status", "words"),
    [
        (None, "/api/v1/positions", 401, "missing bearer token"),
        ("not-a-token", "/api/v1/positions", 401, "invalid token"),
        ("fm-caux-token", "/api/v1/rejections", 403, "role fleet_manager may not"),
        ("eng-eure-token", "/api/v1/rejections", 200, ""),
    ],
)
def test_tokens_and_roles_are_enforced(
    store: Store, token: str | None, path: str, status: int, words: str
) -> None:
    with running_api(store, token=token or "") as api:
        if token is None:
            api.headers.pop("Authorization")
        response = api.get(path)
        assert response.status_code == status
        if words:
            assert words in response.json()["detail"]


def test_vehicles_carry_the_latest_battery_and_fridge_readings(store: Store) -> None:
    from datetime import timedelta

    from protocol import EnergyBatch, EnergySample, FridgeBatch, FridgeSample

    later = T + timedelta(minutes=1)
    store.save_batch(
        EnergyBatch(
            vehicle="vexin-01",
            seq=0,
            samples=[
                EnergySample(t=later, voltage_v=13.1, soc_pct=71.5),
                EnergySample(t=T, voltage_v=13.4, soc_pct=90.0),  # older, arrives after
                EnergySample(t=later, pv_power_w=120.0),  # the solar charger: no SOC
            ],
        ),
        later,
    )
    store.save_batch(
        FridgeBatch(
            vehicle="vexin-01",
            seq=0,
            samples=[FridgeSample(t=later, temp_c=8.4, humidity_pct=50.0, door_open=True)],
        ),
        later,
    )
    with running_api(store) as api:
        vexin = next(v for v in api.get("/api/v1/vehicles").json() if v["id"] == "vexin-01")
    assert (vexin["soc_pct"], vexin["battery_v"]) == (71.5, 13.1)
    assert (vexin["fridge_temp_c"], vexin["fridge_door_open"]) == (8.4, True)
    assert vexin["fridge_t"] == "2026-11-23T09:01:05Z"
