"""A plain paho subscriber with a persistent session that keeps every batch it receives."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from protocol.codec import decode
from protocol.models import Batch
from protocol.topics import subscription


@dataclass(frozen=True)
class Delivery:
    batch: Batch
    payload: bytes
    retained: bool


class BatchCollector:
    """Subscribes QoS 1 to one vehicle's topics under a fixed client id, clean_session
    off: what the broker queued for it while either side was away arrives later."""

    def __init__(self, host: str, port: int, vehicle: str, client_id: str) -> None:
        self.deliveries: list[Delivery] = []
        self.connected = threading.Event()
        self._lock = threading.Lock()
        self._topic = subscription(vehicle)
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        self._client.reconnect_delay_set(min_delay=1, max_delay=2)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._host, self._port = host, port

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        client.subscribe(self._topic, qos=1)
        self.connected.set()

    def _on_disconnect(self, *args: Any) -> None:
        self.connected.clear()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        payload = bytes(msg.payload)
        delivery = Delivery(decode(payload, msg.topic), payload, bool(msg.retain))
        with self._lock:
            self.deliveries.append(delivery)

    def start(self) -> BatchCollector:
        self._client.connect_async(self._host, self._port, keepalive=10)
        self._client.loop_start()
        if not self.connected.wait(10):
            raise AssertionError(f"subscriber could not connect to {self._host}:{self._port}")
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def batches(self, stream: str) -> list[Batch]:
        """Batches of ``stream`` in arrival order, each ``seq`` kept once (the first)."""
        seen: set[int] = set()
        out: list[Batch] = []
        with self._lock:
            deliveries = list(self.deliveries)
        for d in deliveries:
            if d.batch.stream == stream and not d.retained and d.batch.seq not in seen:
                seen.add(d.batch.seq)
                out.append(d.batch)
        return out

    def duplicates_differ(self) -> list[tuple[str, int]]:
        """(stream, seq) pairs delivered more than once with different payloads."""
        first: dict[tuple[str, int], bytes] = {}
        bad: list[tuple[str, int]] = []
        with self._lock:
            deliveries = list(self.deliveries)
        for d in deliveries:
            key = (d.batch.stream, d.batch.seq)
            if key in first and first[key] != d.payload:
                bad.append(key)
            first.setdefault(key, d.payload)
        return bad
