"""The mobile link: a relay to the broker that a scenario cuts and restores."""

from __future__ import annotations

import socket
import threading
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from simulators.link import MobileLink
from tests.support.mosquitto import Mosquitto
from tests.support.wait import wait_for


def test_cutting_the_link_drops_the_connection_until_it_is_restored(
    mosquitto: Mosquitto,
) -> None:
    link = MobileLink(mosquitto.url).start()
    connects: list[int] = []
    disconnected = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="through-the-link")

    def on_connect(*args: Any) -> None:
        connects.append(1)

    def on_disconnect(*args: Any) -> None:
        disconnected.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.reconnect_delay_set(min_delay=1, max_delay=1)
    try:
        client.connect(link.host, link.port)
        client.loop_start()
        wait_for(lambda: connects, what="a connection through the link")
        sent = client.publish("t", b"up", qos=1)
        sent.wait_for_publish(5)
        assert sent.is_published()
        link.cut()
        assert not link.up
        assert disconnected.wait(5)
        # While the link is down, a new connection is closed at once.
        with socket.create_connection((link.host, link.port), timeout=5) as probe:
            probe.settimeout(5)
            assert probe.recv(1) == b""
        link.restore()
        wait_for(lambda: len(connects) >= 2, what="the client reconnecting")
        assert link.connections >= 2 and link.cuts == 1
    finally:
        client.loop_stop()
        client.disconnect()
        link.stop()


def test_the_link_needs_a_broker_url() -> None:
    with pytest.raises(ValueError, match="not a broker URL"):
        MobileLink("http://127.0.0.1:80")
