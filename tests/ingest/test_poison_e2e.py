"""Poison through a running ingest on a real broker: every bus's good traffic goes on being
stored while the poison is quarantined with its reason, and again after a restart."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import generate_latest

from ingest.metrics import IngestMetrics
from ingest.store import Store
from ingest.tables.intake import batches
from protocol import GpsBatch, GpsSample, encode, topic_for
from protocol.models import Stream
from tests.ingest.field_limits import batch_payload
from tests.ingest.test_poison import POISON_LAT, refuse_latitude
from tests.support.live import running_api, running_ingest
from tests.support.mosquitto import Mosquitto
from tests.support.wait import wait_for


class Bus:
    """One MQTT client publishing QoS 1 and waiting for the broker's acknowledgement."""

    def __init__(self, broker: Mosquitto, client_id: str) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(timeout=10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def gps(vehicle: str, seq: int, lat: float = 49.6) -> tuple[str, bytes]:
    batch = GpsBatch(
        vehicle=vehicle,
        seq=seq,
        samples=[GpsSample(t=datetime.now(UTC), lat=lat, lon=0.75, fix_mode=3)],
    )
    return topic_for(vehicle, "gps"), encode(batch)


@contextmanager
def good_traffic(broker: Mosquitto, vehicle: str) -> Iterator[list[int]]:
    """A bus sending a GPS batch every 20 ms; yields the seqs sent so far."""
    bus = Bus(broker, f"traffic-{vehicle}")
    sent: list[int] = []
    stop = threading.Event()

    def run() -> None:
        for seq in itertools.count():
            if stop.is_set():
                return
            bus.publish(*gps(vehicle, seq))
            sent.append(seq)
            time.sleep(0.02)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield sent
    finally:
        stop.set()
        thread.join(timeout=15)
        bus.close()


def issue_poisons(first_seq: int) -> list[tuple[str, bytes, str]]:
    """(topic, payload, reason) of the poisons the issue names, and one that passes the
    protocol but that this database refuses."""
    t = datetime.now(UTC).isoformat()

    def doc(stream: Stream, seq: int, sample: dict[str, Any]) -> tuple[str, bytes]:
        body = {"v": 1, "vehicle": "vexin-01", "stream": stream, "seq": seq, "samples": [sample]}
        return topic_for("vexin-01", stream), json.dumps(body).encode()

    n = first_seq
    return [
        (*doc("event", n, {"t": t, "kind": "restart", "detail": "a\x00b"}), "invalid_schema"),
        (*doc("gps", 2**63, {"t": t, "lat": 49.0, "lon": 1.0, "fix_mode": 3}), "invalid_schema"),
        (
            *doc(
                "gps",
                n + 1,
                {"t": "0001-01-01T00:30:00+01:00", "lat": 49.0, "lon": 1.0, "fix_mode": 3},
            ),
            "invalid_schema",
        ),
        (
            *doc("energy", n + 2, {"t": t, "charger_error": 0, "alarm_reason": 2**64}),
            "invalid_schema",
        ),
        (*doc("energy", n + 3, {"t": t, "pv_power_w": float("inf")}), "invalid_schema"),
        (*gps("vexin-01", n + 4, lat=POISON_LAT), "store_failed"),
    ]


def handled(counters: Mapping[str, int]) -> int:
    """Messages the ingestor has decided on: stored, dropped as copies, or rejected."""
    return sum(v for k, v in counters.items() if k != "stored_samples")


def reasons(store: Store) -> dict[str, int]:
    return store.rejection_counts()


def assert_all_stored_once(store: Store, vehicle: str, sent: list[int]) -> None:
    def missing() -> list[int]:
        c = batches.c
        with store.engine.connect() as conn:
            have = {r[0] for r in conn.execute(sa.select(c.seq).where(c.vehicle == vehicle))}
        return sorted(set(sent) - have)

    try:
        wait_for(
            lambda: store.count_batches(vehicle) == len(sent),
            timeout=30,
            what=f"the {len(sent)} good batches of {vehicle}",
        )
    except AssertionError:
        raise AssertionError(f"missing: {missing()[:50]} of {len(sent)}") from None
    assert len(store.gps_track(vehicle)) == len(sent)


def test_poison_is_quarantined_and_every_bus_good_traffic_stored_also_after_a_restart(
    store: Store, mosquitto: Mosquitto
) -> None:
    refuse_latitude(store, POISON_LAT)
    with running_ingest(store, mosquitto.url, "ingest-poison"):
        pass  # the broker keeps the ingest's session from its first subscription on
    poisoner = Bus(mosquitto, "poisoner")
    try:
        with good_traffic(mosquitto, "caux-01") as sent:
            with running_ingest(store, mosquitto.url, "ingest-poison"):
                first = issue_poisons(100)
                for topic, payload, _ in first:
                    poisoner.publish(topic, payload)
                # Good traffic goes on being stored right behind the poison.
                mark = len(sent) + 25
                wait_for(lambda: store.count_batches("caux-01") >= mark, what="good traffic")
                wait_for(
                    lambda: reasons(store) == {"invalid_schema": 5, "store_failed": 1},
                    what="the poison quarantined",
                )
            # While the ingest is down the broker keeps everything for its session; the
            # poison then comes first in the queue when it restarts.
            again = issue_poisons(200)
            for topic, payload, _ in again:
                poisoner.publish(topic, payload)
            time.sleep(0.5)
            metrics = IngestMetrics()
            with running_ingest(store, mosquitto.url, "ingest-poison", metrics):
                mark = len(sent) + 25
                wait_for(lambda: store.count_batches("caux-01") >= mark, what="traffic resumed")
                wait_for(
                    lambda: reasons(store) == {"invalid_schema": 10, "store_failed": 2},
                    what="the poison quarantined after the restart",
                )
            assert len(sent) > 50
            exposed = generate_latest(metrics.registry).decode()
            assert 'medicobus_ingest_rejected_total{reason="store_failed"} 1.0' in exposed
            assert 'medicobus_ingest_rejected_total{reason="invalid_schema"} 5.0' in exposed
        with running_ingest(store, mosquitto.url, "ingest-poison"):
            assert_all_stored_once(store, "caux-01", list(sent))
            # Listed for engineers, with the database's message.
            with running_api(store) as api:
                listed = api.get("/api/v1/rejections").json()
            assert listed["counts"] == {"invalid_schema": 10, "store_failed": 2}
            failed = [r for r in listed["recent"] if r["reason"] == "store_failed"]
            assert len(failed) == 2
            assert all(f"latitude {POISON_LAT}" in r["detail"] for r in failed)
            assert all(r["topic"] == topic_for("vexin-01", "gps") for r in failed)
        assert store.count_batches("vexin-01") == 0
        detail = {r.reason: r.detail for r in store.recent_rejections()}
        assert f"latitude {POISON_LAT}" in detail["store_failed"]
        details = [r.detail for r in store.recent_rejections() if r.reason == "invalid_schema"]
        for expected in ("NUL", "9223372036854775807", "UTC", "2147483647", "finite number"):
            assert sum(expected in d for d in details) == 2, (expected, details)
    finally:
        poisoner.close()


def test_random_batches_at_the_limits_through_a_running_ingest(
    store: Store, mosquitto: Mosquitto
) -> None:
    """End to end, fewer examples than the store-level property: each generated batch is
    stored or quarantined with a reason, and a good batch sent after it is stored."""
    bus = Bus(mosquitto, "limits")
    seqs = itertools.count()
    try:
        with running_ingest(store, mosquitto.url, "ingest-limits") as ingestor:

            @settings(
                max_examples=15,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
                database=None,
            )
            @given(sent=batch_payload())
            def one(sent: tuple[Stream, bytes]) -> None:
                stream, payload = sent
                before = dict(ingestor.counters)
                bus.publish(topic_for("vexin-01", stream), payload)
                good_seq = next(seqs)
                bus.publish(*gps("caux-01", good_seq))
                wait_for(
                    lambda: handled(ingestor.counters) >= handled(before) + 2,
                    what="both batches handled",
                )
                c = batches.c
                with store.engine.connect() as conn:
                    stored = conn.execute(
                        sa.select(sa.func.count()).where(c.vehicle == "caux-01", c.seq == good_seq)
                    ).scalar_one()
                assert stored == 1
                rejected = {
                    k: v - before.get(k, 0)
                    for k, v in ingestor.counters.items()
                    if k.startswith("rejected.") and v != before.get(k, 0)
                }
                assert "rejected.store_failed" not in rejected
                assert sum(rejected.values()) <= 1

            one()
    finally:
        bus.close()
