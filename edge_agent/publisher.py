"""The MQTT side of the agent (paho-mqtt): QoS 1 publishing, acknowledgements, last will,
and the ingest's confirmations of what it stored.

Whatever paho reports (a PUBACK, a confirmation, the link going up or down) is put on
:attr:`events`
for the agent's own thread. Nothing else happens in paho's callbacks: paho calls
``on_publish`` while holding its own lock, so touching the outbox or publishing from
there could deadlock against the agent publishing at the same moment.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import ValidationError

from firmware_config.agent import BrokerConfig
from protocol.codec import encode
from protocol.models import StatusBatch, StoredConfirmation, Stream
from protocol.topics import confirmation_topic, topic_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Acknowledged:
    """The broker has the message ``mid`` (PUBACK), or refused it (MQTT 5 only)."""

    mid: int
    refused: str | None = None


@dataclass(frozen=True)
class Confirmed:
    """The ingest's word on what it stored: per stream, every seq up to this one. ``None``
    with ``refused`` when the message on the confirmation topic was not readable."""

    stored: dict[Stream, int] | None
    refused: str | None = None


@dataclass(frozen=True)
class LinkUp:
    pass


@dataclass(frozen=True)
class LinkDown:
    reason: str


LinkEvent = Acknowledged | Confirmed | LinkUp | LinkDown


class MqttPublisher:
    """A persistent session (``clean_session=False``): messages handed to paho and not
    yet acknowledged when the link drops are sent again, same ``mid``, on reconnection.
    """

    def __init__(self, vehicle: str, broker: BrokerConfig, max_inflight: int = 100) -> None:
        self._vehicle = vehicle
        self._broker = broker
        self._connected = threading.Event()
        self.events: queue.SimpleQueue[LinkEvent] = queue.SimpleQueue()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=broker.client_id or f"medicobus-{vehicle}",
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        if broker.username is not None:
            self._client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            ca = str(broker.ca_file) if broker.ca_file else None
            cert = str(broker.cert_file) if broker.cert_file else None
            key = str(broker.key_file) if broker.key_file else None
            self._client.tls_set(
                ca_certs=ca, certfile=cert, keyfile=key, tls_version=ssl.PROTOCOL_TLS_CLIENT
            )
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        # The outbox bounds what is handed over (``max_inflight``); paho's own queue
        # limit would only turn a full queue into an error.
        self._client.max_inflight_messages_set(max_inflight)
        self._client.max_queued_messages_set(0)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        rc: ReasonCode,
        props: Properties | None,
    ) -> None:
        if rc.is_failure:
            log.warning("broker %s refused the connection: %s", self._broker.url, rc)
            return
        log.info("connected to %s", self._broker.url)
        # Every time: a broker that lost its disk lost the session's subscription too.
        client.subscribe(confirmation_topic(self._vehicle), qos=1)
        self._connected.set()
        self.events.put(LinkUp())

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        rc: ReasonCode,
        props: Properties | None,
    ) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if was_connected:
            log.info("disconnected from broker (%s); reconnecting", rc)
            self.events.put(LinkDown(str(rc)))

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        rc: ReasonCode,
        props: Properties | None,
    ) -> None:
        self.events.put(Acknowledged(mid, str(rc) if rc.is_failure else None))

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            confirmation = StoredConfirmation.model_validate_json(msg.payload)
        except ValidationError as exc:
            self.events.put(Confirmed(None, f"unreadable: {exc.error_count()} error(s)"))
            return
        if confirmation.vehicle != self._vehicle:
            self.events.put(Confirmed(None, f"confirmation for {confirmation.vehicle}"))
            return
        self.events.put(Confirmed(dict(confirmation.stored)))

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def set_will(self, will: StatusBatch) -> None:
        """The retained status the broker publishes if the link is lost; it takes effect
        at the next connection."""
        self._client.will_set(topic_for(self._vehicle, "status"), encode(will), qos=1, retain=True)

    def start(self) -> None:
        self._client.connect_async(
            self._broker.host, self._broker.port, keepalive=self._broker.keepalive_s
        )
        self._client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def publish(self, stream: Stream, payload: bytes, retain: bool = False) -> int | None:
        """Hand one message to paho, QoS 1; returns its ``mid``, or None if paho refused it.

        Without a link paho keeps the message and sends it on reconnection.
        """
        info = self._client.publish(topic_for(self._vehicle, stream), payload, qos=1, retain=retain)
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            return None
        return info.mid

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
