"""The MQTT side of the agent: QoS 1 publishing, retained status, last will (paho-mqtt)."""

from __future__ import annotations

import logging
import ssl
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from firmware_config.agent import BrokerConfig
from protocol.codec import encode
from protocol.models import Batch, StatusBatch, StatusSample
from protocol.topics import topic_for

log = logging.getLogger(__name__)


class MqttPublisher:
    """Publishes batches QoS 1; paho keeps unacknowledged ones and resends after a reconnect."""

    def __init__(self, vehicle: str, broker: BrokerConfig, will: StatusBatch) -> None:
        self._vehicle = vehicle
        self._connected = threading.Event()
        client_id = broker.client_id or f"medicobus-{vehicle}"
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        if broker.username is not None:
            self._client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            ca = str(broker.ca_file) if broker.ca_file else None
            self._client.tls_set(ca_certs=ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self._client.will_set(topic_for(vehicle, "status"), encode(will), qos=1, retain=True)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.max_queued_messages_set(0)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._broker = broker

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        if rc.is_failure:
            log.warning("broker refused the connection: %s", rc)
            return
        log.info("connected to %s", self._broker.url)
        self._connected.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        self._connected.clear()
        log.info("disconnected from broker (%s); reconnecting", rc)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def pending(self) -> int:
        """Messages handed to paho but not yet acknowledged by the broker."""
        return len(self._client._out_messages)

    def start(self) -> None:
        self._client.connect_async(
            self._broker.host, self._broker.port, keepalive=self._broker.keepalive_s
        )
        self._client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def publish(self, batch: Batch, retain: bool = False) -> mqtt.MQTTMessageInfo:
        return self._client.publish(
            topic_for(self._vehicle, batch.stream), encode(batch), qos=1, retain=retain
        )

    def publish_status(self, batch: StatusBatch) -> mqtt.MQTTMessageInfo:
        return self.publish(batch, retain=True)

    def stop(self, final_status: StatusBatch | None = None) -> None:
        if final_status is not None and self.connected:
            self.publish_status(final_status).wait_for_publish(timeout=2.0)
        self._client.disconnect()
        self._client.loop_stop()


def status_batch(vehicle: str, seq: int, sample: StatusSample) -> StatusBatch:
    return StatusBatch(vehicle=vehicle, seq=seq, samples=[sample])
