"""A simulated GPS on a pseudo-terminal → agent (pyserial, NMEA) → real Mosquitto →
ingest (SQLite) → API over HTTP: the position served is the one the receiver sent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_agent.agent import Agent
from firmware_config.agent import AgentConfig, BrokerConfig, GpsPortConfig
from ingest.itinerary import Itinerary
from ingest.store import Store
from protocol.clock import ScaledClock
from simulators.geo import haversine_m
from simulators.gps_device import GpsSimulator
from simulators.route import DriveRoute, weekly_tour
from tests.support.live import running_api, running_ingest
from tests.support.mosquitto import Mosquitto
from tests.support.wait import wait_for


@pytest.fixture
def sqlite_store(tmp_path: Path, itinerary: Itinerary) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path / 'cloud.sqlite'}")
    store.load_fleet(itinerary)
    yield store
    store.close()


def feature_of(api: httpx.Client, vehicle: str) -> dict[str, Any] | None:
    body = api.get("/api/v1/positions").json()
    assert body["type"] == "FeatureCollection"
    for feature in body["features"]:
        if feature["id"] == vehicle:
            return dict(feature)
    return None


def test_simulated_position_reaches_the_api_within_5_m(
    tmp_path: Path, mosquitto: Mosquitto, sqlite_store: Store, itinerary: Itinerary
) -> None:
    route = DriveRoute(weekly_tour(itinerary, "vexin-01"), dwell_s=30)
    sim = GpsSimulator(route, ScaledClock(datetime.now(UTC)), rate_hz=2.0, route_offset_s=15)
    sim.start()
    agent = Agent(
        AgentConfig(
            vehicle="vexin-01",
            state_dir=tmp_path / "agent",
            batch_window_s=0.25,
            gps=GpsPortConfig(port=sim.path),
            broker=BrokerConfig(url=mosquitto.url, client_id="bus-vexin-01"),
        )
    )
    try:
        with (
            running_ingest(sqlite_store, mosquitto.url, "ingest-e2e"),
            running_api(sqlite_store) as api,
        ):
            agent.start()
            seen: list[dict[str, Any]] = []
            for _ in range(2):
                previous = seen[-1]["properties"]["time"] if seen else None
                feature = wait_for(
                    lambda p=previous: (
                        (f := feature_of(api, "vexin-01")) and f["properties"]["time"] != p and f
                    ),
                    what="a new position of vexin-01 in the API",
                )
                seen.append(feature)
            for feature in seen:
                lon, lat = feature["geometry"]["coordinates"]
                when = datetime.fromisoformat(feature["properties"]["time"])
                truth = sim.truth_at(when)
                assert truth is not None, f"the simulator never sent an epoch at {when}"
                assert haversine_m(lat, lon, *truth) < 5.0
                props = feature["properties"]
                assert props["speed_kmh"] == pytest.approx(props["speed_mps"] * 3.6, abs=0.1)
                assert 0 <= props["heading_deg"] < 360
            # The bus is driving: two successive positions differ.
            assert seen[0]["geometry"] != seen[1]["geometry"]
            vehicles = api.get("/api/v1/vehicles").json()
            assert {v["id"] for v in vehicles} == {"vexin-01", "caux-01"}
            assert next(v for v in vehicles if v["id"] == "vexin-01")["online"] is True
            assert agent.gps_counters.get("gps_fixes") >= 2
            assert agent.gps_counters.get("nmea_bad_checksum") == 0
    finally:
        agent.stop()
        sim.stop()
