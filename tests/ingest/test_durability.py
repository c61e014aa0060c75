"""Nothing lost, nothing counted twice: the ingest killed mid-stream, the broker restarted
mid-stream, and two ingests sharing the load."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.store import Store
from protocol import GpsBatch, GpsSample, encode, topic_for
from tests.support.live import running_ingest
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.wait import wait_for

MEDICOBUS = str(Path(sys.executable).parent / "medicobus")
SAMPLES_PER_BATCH = 4


def batch(vehicle: str, seq: int, t0: datetime) -> GpsBatch:
    return GpsBatch(
        vehicle=vehicle,
        seq=seq,
        samples=[
            GpsSample(
                t=t0 + timedelta(seconds=seq * SAMPLES_PER_BATCH + i),
                lat=49.0 + seq * 1e-5,
                lon=1.0,
                fix_mode=3,
            )
            for i in range(SAMPLES_PER_BATCH)
        ],
    )


class Publisher:
    """Publishes QoS 1 and retries until the broker acknowledged each batch, as the agent's
    outbox does; a retry re-sends the same seq."""

    def __init__(self, broker: Mosquitto) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-publisher")
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.t0 = datetime.now(UTC) - timedelta(hours=3)

    def publish(self, vehicle: str, seq: int) -> None:
        payload = encode(batch(vehicle, seq, self.t0))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            info = self.client.publish(topic_for(vehicle, "gps"), payload, qos=1)
            # paho raises while the broker is away; the batch is simply offered again.
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=2)
                if info.is_published():
                    return
            time.sleep(0.05)
        raise AssertionError(f"could not publish {vehicle} #{seq}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(mosquitto: Mosquitto) -> Iterator[Publisher]:
    p = Publisher(mosquitto)
    yield p
    p.close()


def assert_stored_exactly_once(store: Store, vehicle: str, batches: int) -> None:
    wait_for(
        lambda: store.count_batches(vehicle) == batches,
        timeout=60,
        what=f"{batches} batches of {vehicle}",
    )
    track = store.gps_track(vehicle)
    assert len(track) == batches * SAMPLES_PER_BATCH
    assert len({s.t for s in track}) == len(track)


def ingest_process(config: Path) -> subprocess.Popen[bytes]:
    log = (config.parent / "ingest.log").open("ab")
    return subprocess.Popen(
        [MEDICOBUS, "ingest", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT
    )


def children_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                children.append(int(stat.parent.name))
    return children


def test_ingest_killed_mid_stream_loses_nothing_and_counts_nothing_twice(
    tmp_path: Path, mosquitto: Mosquitto, publisher: Publisher, itinerary_file: Path
) -> None:
    database = tmp_path / "cloud.sqlite"
    config = tmp_path / "ingest.toml"
    config.write_text(
        f'database_url = "sqlite:///{database}"\nitinerary_file = "{itinerary_file}"\n'
        f"metrics_port = {free_port()}\n"
        f'[broker]\nurl = "{mosquitto.url}"\nclient_id = "ingest-killed"\n'
    )
    store = Store.open(f"sqlite:///{database}")
    ingest = ingest_process(config)
    try:
        # The ingest's persistent session starts at its first subscription: until it has
        # stored the first batch, keep offering it.
        def first_stored() -> bool:
            publisher.publish("vexin-01", 0)
            return store.count_batches() > 0

        wait_for(first_stored, what="the ingest subscribed and storing")
        receivers = children_of(ingest.pid)
        assert receivers, "the ingest runs its MQTT session in a receiver process"
        total = 1500
        for seq in range(total):
            publisher.publish("vexin-01", seq)
            if seq == 700:
                ingest.send_signal(signal.SIGKILL)
                ingest.wait()
                # Its receiver must not live on holding the session's client id.
                wait_for(
                    lambda: not any(Path(f"/proc/{pid}").exists() for pid in receivers),
                    timeout=10,
                    what="the killed ingest's receiver process to exit",
                )
            if seq == 1000:
                ingest = ingest_process(config)
        assert_stored_exactly_once(store, "vexin-01", total)
    finally:
        ingest.send_signal(signal.SIGTERM)
        ingest.wait(timeout=15)
        store.close()


def test_broker_restarted_mid_stream_loses_nothing(
    mosquitto: Mosquitto, publisher: Publisher, store: Store
) -> None:
    with running_ingest(store, mosquitto.url, "ingest-broker-restart"):
        total = 600
        for seq in range(total):
            publisher.publish("caux-01", seq)
            if seq == 250:
                mosquitto.stop()
                mosquitto.start()
        assert_stored_exactly_once(store, "caux-01", total)


def test_a_receiver_that_dies_is_replaced_and_nothing_is_lost(
    mosquitto: Mosquitto, publisher: Publisher, store: Store
) -> None:
    from firmware_config.agent import BrokerConfig
    from ingest.pipeline import Ingestor
    from ingest.subscriber import IngestSubscriber

    ingestor = Ingestor(store)
    subscriber = IngestSubscriber(
        ingestor, BrokerConfig(url=mosquitto.url, client_id="ingest-receiver-killed")
    )
    subscriber.start()
    assert subscriber.connected.wait(10)
    try:
        first = subscriber.receiver_pid
        assert first is not None
        total = 600
        for seq in range(total):
            publisher.publish("caux-01", seq)
            if seq == 250:
                os.kill(first, signal.SIGKILL)
        assert_stored_exactly_once(store, "caux-01", total)
        assert subscriber.receiver_pid not in (None, first)
        assert subscriber.connected.is_set()
        assert ingestor.counters["stored_batches"] == total
    finally:
        subscriber.stop()


def test_a_receiver_that_keeps_dying_is_restarted_less_and_less_often(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Restarts back off (1 s, then 2 s) while no receiver lives long enough to subscribe,
    and come back to 1 s once one did."""
    from firmware_config.agent import BrokerConfig
    from ingest.pipeline import Ingestor
    from ingest.subscriber import IngestSubscriber

    broker = Mosquitto(tmp_path / "later")  # its port is chosen, nothing listens yet
    subscriber = IngestSubscriber(
        Ingestor(store), BrokerConfig(url=broker.url, client_id="ingest-restarts")
    )
    caplog.set_level("ERROR", logger="ingest.subscriber")

    def kill_receiver() -> None:
        pid = subscriber.receiver_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_for(
            lambda: subscriber.receiver_pid not in (None, pid), timeout=15, what="a new receiver"
        )

    def announced_delays() -> list[str]:
        return [r.getMessage().rsplit(" in ", 1)[1] for r in caplog.records]

    subscriber.start()
    try:
        kill_receiver()
        kill_receiver()
        assert announced_delays() == ["1 s", "2 s"]
        broker.start()
        assert subscriber.connected.wait(30), "the receiver never subscribed"
        kill_receiver()
        assert announced_delays() == ["1 s", "2 s", "1 s"]
    finally:
        subscriber.stop()
        broker.stop()


def test_two_ingests_sharing_the_load_store_what_one_would(
    mosquitto: Mosquitto, publisher: Publisher, store: Store
) -> None:
    from firmware_config.agent import BrokerConfig
    from ingest.pipeline import Ingestor
    from ingest.subscriber import IngestSubscriber

    ingestors = [Ingestor(store) for _ in range(2)]
    subscribers = [
        IngestSubscriber(
            ing, BrokerConfig(url=mosquitto.url, client_id=f"ingest-{i}"), shared_group="ingest"
        )
        for i, ing in enumerate(ingestors)
    ]
    for s in subscribers:
        s.start()
        assert s.connected.wait(10)
    try:
        threads = [
            threading.Thread(target=lambda v=v: [publisher.publish(v, seq) for seq in range(400)])
            for v in ("vexin-01", "caux-01")
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert_stored_exactly_once(store, "vexin-01", 400)
        assert_stored_exactly_once(store, "caux-01", 400)
        shares = [i.counters["stored_batches"] for i in ingestors]
        assert sum(shares) == 800
        assert all(share > 0 for share in shares), shares
    finally:
        for s in subscribers:
            s.stop()
