"""A simulated Monday of vexin-01, published as GPS batches through a real Mosquitto to a
running ingest with the punctuality observer, then read from the visits API over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from firmware_config.agent import BrokerConfig
from ingest.itinerary import Itinerary
from ingest.pipeline import Ingestor
from ingest.punctuality.tracker import PunctualityTracker
from ingest.store import Store
from ingest.subscriber import IngestSubscriber
from protocol import encode, topic_for
from protocol.clock import ManualClock
from tests.ingest.punctuality.test_tracker import MONDAY, vexin_monday
from tests.support.live import running_api
from tests.support.mosquitto import Mosquitto
from tests.support.wait import wait_for

# The ingest's clock: that Monday evening, so the day's samples are neither stale nor future.
EVENING = datetime(2026, 11, 16, 18, 0, tzinfo=UTC)


@pytest.fixture
def sqlite_store(tmp_path: Path, itinerary: Itinerary) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path / 'cloud.sqlite'}")
    store.load_fleet(itinerary)
    yield store
    store.close()


def visits_of(api: httpx.Client) -> dict[str, dict[str, Any]]:
    body = api.get("/api/v1/visits", params={"date": MONDAY.isoformat()}).json()
    return {v["id"]: v for v in body["visits"]}


def unscheduled_stops(api: httpx.Client) -> list[str]:
    body = api.get("/api/v1/visits", params={"date": MONDAY.isoformat()}).json()
    return [u["stop"] for u in body["unscheduled_stops"]]


def test_a_simulated_day_through_the_broker_reaches_the_visits_api(
    mosquitto: Mosquitto, sqlite_store: Store, itinerary: Itinerary
) -> None:
    tracker = PunctualityTracker(sqlite_store, itinerary)
    tracker.start(MONDAY, past_days=1)
    subscriber = IngestSubscriber(
        Ingestor(sqlite_store, observers=[tracker]),
        BrokerConfig(url=mosquitto.url, client_id="ingest-punctuality"),
        clock=ManualClock(EVENING),
    )
    subscriber.start()
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bus-vexin-01")
    publisher.connect(mosquitto.host, mosquitto.port)
    publisher.loop_start()
    try:
        assert subscriber.connected.wait(10)
        batches = vexin_monday(itinerary)
        # The bus was out of coverage around midday: those batches come in last.
        for b in batches[:2] + batches[4:] + batches[2:4]:
            info = publisher.publish(topic_for("vexin-01", "gps"), encode(b), qos=1)
            info.wait_for_publish(timeout=10)
            assert info.is_published()
        with running_api(sqlite_store, token="coord-eure-token") as api:
            # The late midday batches make the ingest re-derive the day; the Bézu lunch stop
            # shows once it has (outcomes and unscheduled stops are saved together).
            wait_for(
                lambda: (
                    sqlite_store.count_batches("vexin-01") == len(batches)
                    and unscheduled_stops(api) == ["gisors", "bezu-saint-eloi", "gisors"]
                ),
                timeout=30,
                what="the day's batches stored and re-derived",
            )
            visits = visits_of(api)
            assert set(visits) == {"vexin-01:2026-11-16:vesly", "vexin-01:2026-11-16:hacqueville"}
            vesly = visits["vexin-01:2026-11-16:vesly"]
            assert (vesly["status"], vesly["delay_min"]) == ("on_time", pytest.approx(3.0, abs=0.1))
            hacqueville = visits["vexin-01:2026-11-16:hacqueville"]
            assert (hacqueville["status"], hacqueville["delay_min"]) == (
                "late",
                pytest.approx(12.0, abs=0.1),
            )
            assert hacqueville["detected_departure"] is not None
            departed = datetime.fromisoformat(hacqueville["detected_departure"])
            # When the bus set off (16:00), not when it was last seen inside the zone.
            set_off = datetime(2026, 11, 16, 16, 0, tzinfo=UTC)
            assert abs(departed - set_off) <= timedelta(seconds=10)
            confirmed = api.post("/api/v1/visits/vexin-01:2026-11-16:vesly/confirm")
            assert confirmed.json()["confirmed_arrival"] == vesly["detected_arrival"]
        with running_api(sqlite_store) as admin:
            caux = visits_of(admin)["caux-01:2026-11-16:terres-de-caux"]
            assert caux["status"] == "missed"
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        subscriber.stop()
