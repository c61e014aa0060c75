"""The MQTT side of the ingest: a persistent QoS 1 session, acknowledging after commit."""

from __future__ import annotations

import logging
import ssl
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from firmware_config.agent import BrokerConfig
from ingest.pipeline import Ingestor
from protocol.clock import Clock, SystemClock
from protocol.topics import subscription

log = logging.getLogger(__name__)


class IngestSubscriber:
    """Receives every vehicle's telemetry and feeds the :class:`Ingestor`.

    The session is persistent (``clean_session=False``, fixed client id): what arrives
    while the ingest is down waits in the broker. A message is acknowledged only once
    its batch is committed (or quarantined); if the store fails the message is left
    unacknowledged and the broker delivers it again on the next connection.
    """

    def __init__(
        self, ingestor: Ingestor, broker: BrokerConfig, clock: Clock | None = None
    ) -> None:
        self._ingestor = ingestor
        self._broker = broker
        self._clock = clock or SystemClock()
        self.connected = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=broker.client_id or "medicobus-ingest",
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        if broker.username is not None:
            self._client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            ca = str(broker.ca_file) if broker.ca_file else None
            self._client.tls_set(ca_certs=ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        if rc.is_failure:
            log.warning("broker refused the ingest: %s", rc)
            return
        client.subscribe(subscription(), qos=1)
        log.info("ingest connected to %s", self._broker.url)
        self.connected.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        self.connected.clear()
        log.info("ingest disconnected (%s); reconnecting", rc)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self._ingestor.handle(msg.topic, bytes(msg.payload), self._clock.now())
        except Exception:
            log.exception("could not store a message from %s; it stays unacknowledged", msg.topic)
            return
        client.ack(msg.mid, msg.qos)

    def start(self) -> None:
        self._client.connect_async(self._broker.host, self._broker.port, keepalive=30)
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
