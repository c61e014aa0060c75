"""Bad messages published straight to a real broker are quarantined with their reason,
and valid traffic keeps flowing around them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import generate_latest

from ingest.metrics import IngestMetrics
from ingest.store import Store
from protocol import MAX_PAYLOAD_BYTES, GpsBatch, GpsSample, encode, topic_for
from tests.support.live import running_api, running_ingest
from tests.support.mosquitto import Mosquitto
from tests.support.wait import wait_for


def batch(seq: int, vehicle: str = "vexin-01", t: datetime | None = None) -> GpsBatch:
    t = t or datetime.now(UTC)
    return GpsBatch(
        vehicle=vehicle,
        seq=seq,
        samples=[GpsSample(t=t, lat=49.24 + seq * 1e-4, lon=1.63, fix_mode=3)],
    )


def test_bad_messages_are_counted_with_reasons_while_valid_ones_flow(
    mosquitto: Mosquitto, store: Store
) -> None:
    good_topic = topic_for("vexin-01", "gps")
    valid = encode(batch(0))
    wrong_version = json.loads(valid)
    wrong_version["v"] = 7
    bad: list[tuple[str, bytes, str]] = [
        (
            good_topic,
            b'{"v": 1, "vehicle": "vexin-01", "stream": "gps", "seq": 9',
            "malformed_json",
        ),
        (good_topic, b"\x00\xff" * 10, "malformed_json"),
        (good_topic, b"{" + b" " * MAX_PAYLOAD_BYTES + b"}", "oversized"),
        (topic_for("ghost-99", "gps"), encode(batch(0, vehicle="ghost-99")), "unknown_vehicle"),
        (good_topic, json.dumps(wrong_version).encode(), "unsupported_version"),
        (topic_for("caux-01", "gps"), encode(batch(50)), "topic_mismatch"),
        ("medicobus/v1/vexin-01/radio", valid, "bad_topic"),
        (
            good_topic,
            encode(batch(51, t=datetime.now(UTC) + timedelta(days=2))),
            "future_timestamp",
        ),
        (
            good_topic,
            encode(batch(52, t=datetime.now(UTC) - timedelta(days=400))),
            "stale_timestamp",
        ),
        (
            good_topic,
            b'{"v": 1, "vehicle": "vexin-01", "stream": "gps", "seq": 3}',
            "invalid_schema",
        ),
    ]
    metrics = IngestMetrics()
    with running_ingest(store, mosquitto.url, "ingest-rejections", metrics) as ingestor:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="publisher-test")
        client.connect(mosquitto.host, mosquitto.port)
        client.loop_start()
        infos = []
        # Interleave: valid, bad, valid, bad, ... then the valid seq 3 twice (a redelivery).
        for seq, (topic, payload, _) in enumerate(bad):
            infos.append(client.publish(good_topic, encode(batch(seq)), qos=1))
            infos.append(client.publish(topic, payload, qos=1))
        infos.append(client.publish(good_topic, encode(batch(3)), qos=1))
        for info in infos:
            info.wait_for_publish(timeout=10)
        client.disconnect()
        client.loop_stop()

        expected: dict[str, int] = {}
        for _, _, reason in bad:
            expected[reason] = expected.get(reason, 0) + 1
        wait_for(
            lambda: store.rejection_counts() == expected and store.count_batches() == len(bad),
            what=f"rejections {expected} and {len(bad)} stored batches",
        )
        wait_for(lambda: ingestor.counters["duplicates"] == 1, what="one duplicate counted")
        assert ingestor.counters["stored_batches"] == len(bad)
        exposed = generate_latest(metrics.registry).decode()
        assert 'medicobus_ingest_rejected_total{reason="oversized"} 1.0' in exposed
        assert 'medicobus_ingest_messages_total{outcome="duplicate"} 1.0' in exposed
        assert f"medicobus_ingest_samples_stored_total {float(len(bad))}" in exposed
        assert len(store.gps_track("vexin-01")) == len(bad)  # stored once each

    with running_api(store) as api:
        body = api.get("/api/v1/rejections").json()
    assert body["counts"] == expected
    by_reason = {r["reason"]: r for r in body["recent"]}
    assert "ghost-99" in by_reason["unknown_vehicle"]["detail"]
    assert "not valid JSON" in by_reason["malformed_json"]["detail"]
    assert by_reason["oversized"]["payload_bytes"] == MAX_PAYLOAD_BYTES + 2
    assert len(by_reason["oversized"]["payload_head"]) <= 2048
    assert "more than" in by_reason["future_timestamp"]["detail"]
