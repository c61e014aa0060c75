"""A subscriber that keeps every batch it receives, decoded and validated by the codec."""

from __future__ import annotations

import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from protocol.codec import ProtocolError, decode
from protocol.models import Batch, GpsSample
from protocol.topics import subscription


class BatchCollector:
    def __init__(self, host: str, port: int) -> None:
        self.batches: list[Batch] = []
        self.invalid: list[ProtocolError] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._host, self._port = host, port

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        client.subscribe(subscription(), qos=1)

    def _on_subscribe(self, *args: Any) -> None:
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            batch = decode(msg.payload, msg.topic)
        except ProtocolError as exc:
            with self._lock:
                self.invalid.append(exc)
            return
        with self._lock:
            self.batches.append(batch)

    def __enter__(self) -> BatchCollector:
        self._client.connect(self._host, self._port)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            raise AssertionError("the collector could not subscribe")
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def received(self) -> list[Batch]:
        with self._lock:
            return list(self.batches)

    def gps(self, vehicle: str | None = None) -> list[GpsSample]:
        return sorted(
            (
                s
                for b in self.received()
                if b.stream == "gps" and (vehicle is None or b.vehicle == vehicle)
                for s in b.samples
                if isinstance(s, GpsSample)
            ),
            key=lambda s: s.t,
        )
