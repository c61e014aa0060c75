"""The ingest's MQTT session, run in a process of its own.

paho-mqtt parses every packet in Python: in the process that validates and stores, its
network loop would take the interpreter lock from the writer for most of the time. Here
it has a core to itself and only does three things: take each message from the broker,
pass it on in groups through a pipe, and acknowledge it when the store says it is
committed. This module imports nothing of the store, so the process starts quickly.

Pipe protocol (tuples, pickled by :mod:`multiprocessing`):

* receiver to ingest: ``("messages", [(mid, qos, topic, payload), ...])``,
  ``("ready", bool)`` when the subscription is confirmed or the link is lost,
  ``("drained", None)`` once nothing more will be sent after a stop.
* ingest to receiver: ``("ack", [(mid, qos), ...])``, ``("publish", [(topic, payload),
  ...])`` (retained, QoS 1: the buses' stored confirmations), ``("stop", None)`` (take no
  new messages, send what was taken, then ``drained``) and ``("close", None)``
  (disconnect and exit).

If the ingest process dies, the pipe closes: the receiver exits at once without
acknowledging anything more, and the broker keeps the rest for the next session.
"""

from __future__ import annotations

import logging
import os
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from firmware_config.agent import BrokerConfig

log = logging.getLogger(__name__)

MAX_SEND: Final = 2000  # messages per pipe send
TAKEN_BOUND: Final = 20_000  # taken but not yet passed on: beyond, the network thread waits
FORWARD_EVERY_S: Final = 0.002
INFLIGHT: Final = 1000


@dataclass(frozen=True)
class ReceiverConfig:
    broker: BrokerConfig
    topic: str
    log_level: int = logging.INFO


class _Receiver:
    def __init__(self, config: ReceiverConfig, to_ingest: Connection) -> None:
        self._config = config
        self._out = to_ingest
        self._lock = threading.Lock()
        self._pipe_lock = threading.Lock()
        self._taken: list[tuple[int, int, str, bytes]] = []
        self._room = threading.Event()
        self._stopping = False
        broker = config.broker
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=broker.client_id or "medicobus-ingest",
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        if broker.username is not None:
            self.client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            ca = str(broker.ca_file) if broker.ca_file else None
            self.client.tls_set(ca_certs=ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.max_inflight_messages_set(INFLIGHT)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    # --- paho callbacks (network thread) -------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        if rc.is_failure:
            log.warning("broker refused the ingest: %s", rc)
            return
        client.subscribe(self._config.topic, qos=1)
        log.info(
            "ingest connected to %s, subscribing to %s",
            self._config.broker.url,
            self._config.topic,
        )

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: Any, props: Any
    ) -> None:
        # Ready only once the broker confirmed the subscription: from then on it keeps
        # every message for this session, connected or not.
        self._send(("ready", True))

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        self._send(("ready", False))
        log.info("ingest disconnected (%s); reconnecting", rc)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            if self._stopping:
                return  # left unacknowledged: the broker delivers it again next session
            # One string per topic (interned): pickled once per send, and the ingest's
            # cache of parsed topics hashes it once.
            self._taken.append((msg.mid, msg.qos, sys.intern(msg.topic), bytes(msg.payload)))
            full = len(self._taken) >= TAKEN_BOUND
            if full:
                self._room.clear()
        if full:
            self._room.wait()  # the ingest is behind: stop reading, TCP pushes back

    # --- threads ---------------------------------------------------------------------

    def _send(self, item: tuple[str, object]) -> None:
        with self._pipe_lock:  # one writer on the pipe at a time
            try:
                self._out.send(item)
            except OSError:
                os._exit(0)  # the ingest is gone

    def forward(self) -> None:
        """Pass taken messages on every few milliseconds, as many per send as have come.

        Polling rather than waking on each message: a wake-up per message would hand the
        interpreter lock back and forth with the network thread thousands of times a
        second.
        """
        while True:
            time.sleep(FORWARD_EVERY_S)
            with self._lock:
                taken, self._taken = self._taken, []
                stopping = self._stopping
                self._room.set()
            for start in range(0, len(taken), MAX_SEND):
                self._send(("messages", taken[start : start + MAX_SEND]))
            if stopping:
                self._send(("drained", None))
                return

    def take_acks(self, from_ingest: Connection) -> None:
        while True:
            try:
                kind, body = from_ingest.recv()
            except (EOFError, OSError):
                os._exit(0)  # the ingest died: acknowledge nothing more
            if kind == "ack":
                for mid, qos in body:
                    if qos > 0:
                        self.client.ack(mid, qos)
            elif kind == "publish":
                for topic, payload in body:
                    self.client.publish(topic, payload, qos=1, retain=True)
            elif kind == "stop":
                with self._lock:
                    self._stopping = True
            elif kind == "close":
                return


def run(config: ReceiverConfig, from_ingest: Connection, to_ingest: Connection) -> None:
    """Entry point of the receiver process."""
    logging.basicConfig(level=config.log_level, format="%(levelname)s %(name)s: %(message)s")
    receiver = _Receiver(config, to_ingest)
    forwarder = threading.Thread(target=receiver.forward, name="forward", daemon=True)
    forwarder.start()
    broker = config.broker
    receiver.client.connect_async(broker.host, broker.port, keepalive=broker.keepalive_s)
    receiver.client.loop_start()
    receiver.take_acks(from_ingest)
    receiver.client.disconnect()
    receiver.client.loop_stop()


def main() -> None:
    """``python -m ingest.receiver <fd from ingest> <fd to ingest>``, as the ingest starts
    it; the configuration is the first thing on the pipe."""
    from_ingest = Connection(int(sys.argv[1]))
    to_ingest = Connection(int(sys.argv[2]))
    config = from_ingest.recv()
    run(config, from_ingest, to_ingest)


if __name__ == "__main__":
    main()
