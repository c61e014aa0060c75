"""Live push over a real uvicorn server, read by real HTTP clients (httpx streaming), with
samples published to a real Mosquitto and stored by a running ingest."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from api.app import create_app
from api.auth import ApiUser, Role, hash_token
from firmware_config.agent import BrokerConfig
from ingest.itinerary import Itinerary
from ingest.pipeline import Ingestor
from ingest.punctuality.tracker import PunctualityTracker
from ingest.store import Store, create_engine
from ingest.subscriber import IngestSubscriber
from protocol import encode, topic_for
from protocol.clock import ManualClock
from protocol.models import GpsBatch, GpsSample
from tests.ingest.punctuality.test_tracker import MONDAY, vexin_monday
from tests.support.live import TEST_USERS, serving
from tests.support.mosquitto import Mosquitto
from tests.support.sse import EventStream, ServerEvent
from tests.support.wait import wait_for

# The ingest's and the API's clock: that Monday evening, so its samples are accepted.
EVENING = datetime(2026, 11, 16, 18, 0, tzinfo=UTC)
VESLY = "vexin-01:2026-11-16:vesly"
USERS = [
    *TEST_USERS,
    ApiUser(
        name="coord2-eure",
        role=Role.COORDINATOR,
        operator="doct-eure",
        token_sha256=hash_token("coord2-eure-token"),
    ),
]


@dataclass
class Live:
    url: str
    api_store: Store
    publisher: mqtt.Client
    seq: dict[str, int]

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    def stream(self, token: str, last_event_id: int | None = None) -> EventStream:
        return EventStream(self.url, token, last_event_id)

    def publish(self, batch: GpsBatch) -> None:
        info = self.publisher.publish(topic_for(batch.vehicle, "gps"), encode(batch), qos=1)
        info.wait_for_publish(timeout=10)
        assert info.is_published()

    def fix(self, vehicle: str, t: datetime, lat: float, lon: float) -> None:
        seq = self.seq.get(vehicle, 10_000)
        self.seq[vehicle] = seq + 1
        sample = GpsSample(t=t, lat=lat, lon=lon, speed_mps=8.0, course_deg=90.0, fix_mode=3)
        self.publish(GpsBatch(vehicle=vehicle, seq=seq, samples=[sample]))

    @property
    def broadcaster(self) -> Any:
        return self.app_state.live

    app_state: Any = None


@pytest.fixture
def live(tmp_path: Path, mosquitto: Mosquitto, itinerary: Itinerary) -> Iterator[Live]:
    url = f"sqlite:///{tmp_path / 'cloud.sqlite'}"
    ingest_store = Store.open(url)
    ingest_store.load_fleet(itinerary)
    tracker = PunctualityTracker(ingest_store, itinerary)
    tracker.start(MONDAY, past_days=1)
    subscriber = IngestSubscriber(
        Ingestor(ingest_store, observers=[tracker]),
        BrokerConfig(url=mosquitto.url, client_id="ingest-live"),
        clock=ManualClock(EVENING),
    )
    subscriber.start()
    # The API has an engine of its own, as in its own process: its statements are counted.
    api_store = Store(create_engine(url))
    app = create_app(
        api_store, USERS, live_interval_s=0.2, live_ping_s=0.3, clock=ManualClock(EVENING)
    )
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bus-publisher")
    publisher.connect(mosquitto.host, mosquitto.port)
    publisher.loop_start()
    try:
        assert subscriber.connected.wait(10)
        with serving(app) as base_url:
            state = Live(base_url, api_store, publisher, {})
            state.app_state = app.state
            yield state
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        subscriber.stop()
        api_store.close()
        ingest_store.close()


def positions_of(event: ServerEvent) -> dict[str, tuple[float, float]]:
    return {f["id"]: tuple(f["geometry"]["coordinates"]) for f in event.json()["features"]}


def test_snapshots_on_connect_are_the_json_of_the_list_endpoints(live: Live) -> None:
    live.fix("vexin-01", EVENING - timedelta(minutes=5), 49.2411, 1.6333)
    with live.client("coord-eure-token") as api:
        wait_for(lambda: api.get("/api/v1/positions").json()["features"], what="a position")
        with live.stream("coord-eure-token") as stream:
            first = [
                stream.wait_for(lambda e, k=k: e.event == k, what=k)
                for k in ("positions", "vehicles", "alerts")
            ]
            assert stream.status == 200
            assert first[0].json() == api.get("/api/v1/positions").json()
            assert first[1].json() == api.get("/api/v1/vehicles").json()
            assert first[2].json() == api.get("/api/v1/alerts", params={"active": "true"}).json()
            ids = [e.id for e in first]
            assert all(isinstance(i, int) for i in ids)
            assert ids == sorted(ids) and len(set(ids)) == 3


def test_positions_move_without_reloading_and_each_operator_sees_only_its_own(
    live: Live,
) -> None:
    with live.stream("coord-eure-token") as eure, live.stream("fm-caux-token") as caux:
        eure.wait_for(lambda e: e.event == "positions", what="the first snapshot")
        caux.wait_for(lambda e: e.event == "positions", what="the first snapshot")
        route = [(49.2411, 1.6333), (49.2450, 1.6400), (49.2500, 1.6500)]
        for i, (lat, lon) in enumerate(route):
            live.fix("vexin-01", EVENING - timedelta(minutes=10 - i), lat, lon)
            eure.wait_for(
                lambda e, p=(lon, lat): (
                    e.event == "positions" and positions_of(e).get("vexin-01") == p
                ),
                what=f"vexin-01 at {lat}, {lon}",
            )
        live.fix("caux-01", EVENING - timedelta(minutes=3), 49.6175, 0.7539)
        caux.wait_for(
            lambda e: e.event == "positions" and "caux-01" in positions_of(e),
            what="caux-01's position",
        )
        # Positions are sent when they change only: three fixes, three events after the
        # snapshot (plus none for caux-01, which eure does not see).
        moves = [e for e in eure.received("positions")][1:]
        assert len(moves) == 3
        ids = [e.id for e in eure.received()]
        assert ids == sorted(ids)
    assert all("vexin-01" not in e.data and "doct-eure" not in e.data for e in caux.received())
    assert all("caux-01" not in e.data and "cpts-caux" not in e.data for e in eure.received())


def test_a_detection_and_a_confirmation_reach_another_coordinator_and_resume_after_a_break(
    live: Live, itinerary: Itinerary
) -> None:
    with live.stream("coord2-eure-token") as other, live.stream("fm-caux-token") as caux:
        other.wait_for(lambda e: e.event == "alerts", what="the first snapshot")
        for batch in vexin_monday(itinerary):
            live.publish(batch)
        # Found by the shared read: the ingest (another client of the database) detected it.
        detected = other.wait_for(
            lambda e: e.event == "visits" and VESLY in e.json()["visit_ids"],
            what="the detection at Vesly",
        )
        assert detected.json()["date"] == "2026-11-16"
        assert "vexin-01" in detected.json()["vehicles"]
        with live.client("coord-eure-token") as coordinator:
            wait_for(
                lambda: coordinator.get("/api/v1/visits", params={"date": "2026-11-16"}).json()[
                    "visits"
                ][0]["detected_arrival"],
                what="the detection in the API",
            )
            before = len(other.received())
            assert coordinator.post(f"/api/v1/visits/{VESLY}/confirm").status_code == 200
            confirmed = other.wait_for(
                lambda e: e.event == "visits" and e.json()["visit_ids"] == [VESLY],
                after=before,
                what="the confirmation",
            )
            assert confirmed.json() == {
                "date": "2026-11-16",
                "vehicles": ["vexin-01"],
                "visit_ids": [VESLY],
            }
        last_id = other.received()[-1].id
        assert last_id is not None
    assert caux.received("visits") == []
    # While the coordinator's board is away, patients seen are entered; it comes back
    # with Last-Event-ID and gets what it missed, then fresh snapshots.
    with live.client("coord-eure-token") as coordinator:
        body = {"patients_seen": 12}
        reads_before = live.broadcaster.reads
        assert coordinator.post(f"/api/v1/visits/{VESLY}/attendance", json=body).status_code == 200
    wait_for(
        lambda: live.broadcaster.reads > reads_before + 1, what="the attendance seen by a read"
    )
    with live.stream("coord2-eure-token", last_event_id=last_id) as back:
        snapshot = back.wait_for(lambda e: e.event == "alerts", what="the snapshot")
        kinds = [e.event for e in back.received()]
        assert kinds[0] == "visits"
        replayed = back.received()[0]
        assert replayed.id is not None and replayed.id > last_id
        assert replayed.json()["visit_ids"] == [VESLY]
        assert snapshot.id is not None and snapshot.id > replayed.id
        assert {"positions", "vehicles", "alerts"} <= set(kinds)


def test_one_database_read_per_interval_whatever_the_number_of_clients(live: Live) -> None:
    statements = {"n": 0}
    lock = threading.Lock()

    def count(*_: object) -> None:
        with lock:
            statements["n"] += 1

    sa.event.listen(live.api_store.engine, "before_cursor_execute", count)

    def per_read(reads: int) -> tuple[float, int]:
        start_reads = live.broadcaster.reads
        with lock:
            start_statements = statements["n"]
        wait_for(lambda: live.broadcaster.reads >= start_reads + reads, what=f"{reads} reads")
        with lock:
            done = statements["n"] - start_statements
        return done / (live.broadcaster.reads - start_reads), live.broadcaster.clients

    with live.stream("coord-eure-token") as one:
        one.wait_for(lambda e: e.event == "alerts", what="the snapshot")
        alone, clients = per_read(10)
        assert clients == 1
        streams = [live.stream(t) for t in ["fm-caux-token", "eng-eure-token"] * 5]
        for s in streams:
            s.__enter__()
        try:
            for s in streams:
                s.wait_for(lambda e: e.event == "alerts", what="the snapshot")
            crowded, clients = per_read(10)
            assert clients == 11
        finally:
            for s in streams:
                s.close()
    # Statements per read, not per client: connecting ten more clients adds none.
    assert crowded == pytest.approx(alone, abs=0.5)
    assert alone <= 8


def test_the_stream_needs_a_valid_token_and_an_allowed_role(live: Live) -> None:
    with httpx.Client(base_url=live.url, timeout=10) as anonymous:
        assert anonymous.get("/api/v1/live").status_code == 401
        bad = anonymous.get("/api/v1/live", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        for value in ("abc", "-1", "1" * 40, "1e3", "0x10"):
            refused = anonymous.get(
                "/api/v1/live",
                headers={"Authorization": "Bearer coord-eure-token", "Last-Event-ID": value},
            )
            assert refused.status_code == 422, value
            assert "Last-Event-ID" in refused.json()["detail"]
