"""The MQTT side of the ingest: a persistent QoS 1 session, acknowledging after commit."""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from firmware_config.agent import BrokerConfig
from ingest.pipeline import Ingestor, Message
from protocol.clock import Clock, SystemClock
from protocol.topics import subscription

log = logging.getLogger(__name__)

MAX_GROUP: Final = 2000  # messages committed in one transaction
QUEUE_BOUND: Final = 20_000  # beyond this the network thread waits: TCP pushes back
MAX_RETRY_DELAY_S: Final = 30.0


@dataclass(frozen=True)
class _Received:
    message: Message
    mid: int
    qos: int


class IngestSubscriber:
    """Receives every vehicle's telemetry and feeds the :class:`Ingestor`.

    The session is persistent (``clean_session=False``, fixed client id): what arrives
    while the ingest is down waits in the broker. The network thread only queues
    messages; a writer thread commits them in groups and then acknowledges each one.
    If the store fails, the group is retried and nothing is acknowledged before it
    commits; if the process dies, the broker delivers the unacknowledged messages again
    and the store drops the ones it already has.

    With ``shared_group`` several ingest processes share the load through an MQTT
    shared subscription (``$share/<group>/...``), each with its own client id.
    """

    def __init__(
        self,
        ingestor: Ingestor,
        broker: BrokerConfig,
        clock: Clock | None = None,
        shared_group: str | None = None,
    ) -> None:
        self._ingestor = ingestor
        self._broker = broker
        self._clock = clock or SystemClock()
        self._topic = subscription()
        if shared_group:
            self._topic = f"$share/{shared_group}/{self._topic}"
        self.connected = threading.Event()
        self._queue: queue.Queue[_Received] = queue.Queue(maxsize=QUEUE_BOUND)
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)
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
        self._client.max_inflight_messages_set(1000)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        if rc.is_failure:
            log.warning("broker refused the ingest: %s", rc)
            return
        client.subscribe(self._topic, qos=1)
        log.info("ingest connected to %s, subscribing to %s", self._broker.url, self._topic)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: Any, props: Any
    ) -> None:
        # Ready only once the broker confirmed the subscription: from then on it keeps
        # every message for this session, connected or not.
        self.connected.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        self.connected.clear()
        log.info("ingest disconnected (%s); reconnecting", rc)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self._stop.is_set():
            return  # left unacknowledged: the broker delivers it again next session
        message = Message(msg.topic, bytes(msg.payload), self._clock.now())
        self._queue.put(_Received(message, msg.mid, msg.qos))

    def _next_group(self) -> list[_Received]:
        try:
            group = [self._queue.get(timeout=0.2)]
        except queue.Empty:
            return []
        while len(group) < MAX_GROUP:
            try:
                group.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return group

    def _write_loop(self) -> None:
        while not (self._stop.is_set() and self._queue.empty()):
            group = self._next_group()
            if not group:
                continue
            delay = 0.5
            while True:
                try:
                    self._ingestor.handle_many([r.message for r in group])
                    break
                except Exception:
                    if self._stop.is_set():
                        log.error("store unavailable at shutdown; %d messages left", len(group))
                        return
                    log.exception("store failed; retrying %d messages in %.1f s", len(group), delay)
                    time.sleep(delay)
                    delay = min(delay * 2, MAX_RETRY_DELAY_S)
            for r in group:
                if r.qos > 0:
                    self._client.ack(r.mid, r.qos)

    @property
    def backlog(self) -> int:
        """Messages received but not yet committed."""
        return self._queue.qsize()

    def start(self) -> None:
        self._writer.start()
        self._client.connect_async(self._broker.host, self._broker.port, keepalive=30)
        self._client.loop_start()

    def stop(self) -> None:
        """Stop taking messages, commit and acknowledge those taken, then disconnect.

        The subscription stays in the broker's persistent session, so what is published
        while the ingest is down waits for it.
        """
        self._stop.set()
        self._writer.join(timeout=30)
        self._client.disconnect()
        self._client.loop_stop()
