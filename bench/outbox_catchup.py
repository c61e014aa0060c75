"""Catch-up after a long outage: the outbox holds 8 hours of GPS (1 Hz), VE.Direct
(1 Hz) and fridge (every 5 s) samples; the link comes back; how long until a
subscriber has every one of them, until the ingest has stored and confirmed them all
(the outbox let go of them), and are any lost or duplicated?

Samples are written straight into the agent's outbox (as its commits would have done
once a second; here an hour per transaction) and the agent is then started against a
real Mosquitto, configured like the test brokers, with the ingest (SQLite) running. A
plain paho subscriber with a persistent session de-duplicates by ``(stream, seq)``.

    .venv/bin/python bench/outbox_catchup.py [--hours 8]

Last line: ``samples=… drain_s=… confirmed_s=… lost=… duplicated=… stored_lost=…
stored_doubled=…`` and more key=value figures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge_agent.agent import Agent
from edge_agent.batching import Sample, stream_of
from edge_agent.outbox import Outbox, OutboxLimits
from firmware_config.agent import AgentConfig, BrokerConfig
from ingest.itinerary import load_itinerary
from ingest.store import Store
from ingest.tables.intake import energy_samples, fridge_samples, gps_samples
from protocol.codec import decode
from protocol.models import EnergySample, FridgeSample, GpsSample
from protocol.topics import subscription
from tests.support.live import running_ingest
from tests.support.mosquitto import Mosquitto

FLEET = Path(__file__).resolve().parent.parent / "tests" / "data" / "itineraries.toml"

VEHICLE = "vexin-01"
TELEMETRY = ("gps", "energy", "fridge")


def offline_samples(start: datetime, seconds: int) -> list[Sample]:
    """One hour's worth (or less) of what the bus records, in arrival order."""
    out: list[Sample] = []
    for i in range(seconds):
        t = start + timedelta(seconds=i)
        out.append(
            GpsSample(
                t=t,
                lat=49.25 + i * 1e-6,
                lon=1.65 + i * 1e-6,
                alt_m=112.0,
                speed_mps=11.2,
                course_deg=(i % 3600) / 10.0,
                fix_mode=3,
                sats=9,
                hdop=0.9,
            )
        )
        out.append(
            EnergySample(
                t=t,
                voltage_v=12.7,
                current_a=-4.1,
                power_w=-52.0,
                soc_pct=80.0,
                consumed_ah=-12.5,
                pv_power_w=35.0,
                yield_today_kwh=0.42,
            )
        )
        if int(t.timestamp()) % 5 == 0:
            out.append(FridgeSample(t=t, temp_c=4.6, humidity_pct=41.0, door_open=False))
    return out


def fill_outbox(path: Path, hours: float) -> set[tuple[str, datetime]]:
    outbox = Outbox(path, VEHICLE, OutboxLimits(max_bytes=2 * 1024**3))
    total = int(hours * 3600)
    start = (datetime.now(UTC) - timedelta(seconds=total)).replace(microsecond=0)
    expected: set[tuple[str, datetime]] = set()
    for offset in range(0, total, 3600):
        samples = offline_samples(start + timedelta(seconds=offset), min(3600, total - offset))
        with outbox.transaction() as tx:
            tx.add(samples)
        expected.update((stream_of(s), s.t) for s in samples)
    outbox.close()
    return expected


class Receiver:
    """Counts every sample delivered, per (stream, seq) and per sample time."""

    def __init__(self, broker: Mosquitto) -> None:
        self.lock = threading.Lock()
        self.seqs: dict[tuple[str, int], bytes] = {}
        self.changed_resends = 0
        self.carriers: dict[tuple[str, datetime], set[int]] = {}
        self.largest_batch = 0
        self.last_arrival = 0.0
        self.connected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="bench-receiver", clean_session=False
        )
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        if not self.connected.wait(10):
            raise RuntimeError("the receiver could not connect")

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        client.subscribe(subscription(VEHICLE), qos=1)
        self.connected.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        payload = bytes(msg.payload)
        batch = decode(payload, msg.topic)
        if batch.stream not in TELEMETRY:
            return
        key = (batch.stream, batch.seq)
        with self.lock:
            if key in self.seqs:
                self.changed_resends += self.seqs[key] != payload
                return
            self.seqs[key] = payload
            self.largest_batch = max(self.largest_batch, len(batch.samples))
            for s in batch.samples:
                self.carriers.setdefault((batch.stream, s.t), set()).add(batch.seq)
            self.last_arrival = time.monotonic()

    def has_all(self, expected: set[tuple[str, datetime]]) -> bool:
        with self.lock:
            return len(self.carriers) >= len(expected) and expected <= self.carriers.keys()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def stored_keys(store: Store) -> list[tuple[str, datetime]]:
    """Every telemetry sample the ingest stored, one entry per row."""
    out: list[tuple[str, datetime]] = []
    tables = {"gps": gps_samples, "energy": energy_samples, "fridge": fridge_samples}
    with store.engine.connect() as conn:
        for stream, table in tables.items():
            for (t,) in conn.execute(sa.select(table.c.t).where(table.c.vehicle == VEHICLE)):
                out.append((stream, t if t.tzinfo else t.replace(tzinfo=UTC)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=8.0, help="length of the outage")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after (s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="outbox-bench-") as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "mosquitto").start()
        try:
            state_dir = work / "agent"
            filled = time.monotonic()
            expected = fill_outbox(state_dir / "outbox.sqlite", args.hours)
            fill_s = time.monotonic() - filled
            receiver = Receiver(broker)
            store = Store.open(f"sqlite:///{work / 'cloud.sqlite'}")
            store.load_fleet(load_itinerary(FLEET))
            with running_ingest(store, broker.url, "bench-catchup-ingest"):
                agent = Agent(
                    AgentConfig(
                        vehicle=VEHICLE, state_dir=state_dir, broker=BrokerConfig(url=broker.url)
                    )
                )
                link_back = time.monotonic()
                agent.start()
                deadline = link_back + args.timeout
                while not receiver.has_all(expected) and time.monotonic() < deadline:
                    time.sleep(0.01)
                drain_s = receiver.last_arrival - link_back
                # Confirmed: what is left is at most the last status reports.
                while agent.outbox_depth > 3 and time.monotonic() < deadline:
                    time.sleep(0.01)
                confirmed_s = time.monotonic() - link_back
                time.sleep(0.5)  # let any late resend arrive before counting duplicates
                agent.stop()
                receiver.stop()
            stored = stored_keys(store)
            store.close()
        finally:
            broker.stop()
        left = Outbox(state_dir / "outbox.sqlite", VEHICLE)
        with receiver.lock:
            lost = len(expected - receiver.carriers.keys())
            duplicated = sum(len(seqs) - 1 for seqs in receiver.carriers.values())
            duplicated += receiver.changed_resends
            batches = len(receiver.seqs)
        print(
            f"outage_h={args.hours:g} filled_in_s={fill_s:.1f} batches={batches} "
            f"largest_batch={receiver.largest_batch} left_in_outbox={left.depth}"
        )
        left.close()
        stored_lost = len(expected - set(stored))
        stored_doubled = len(stored) - len(set(stored))
        print(
            f"samples={len(expected)} drain_s={drain_s:.2f} confirmed_s={confirmed_s:.2f} "
            f"lost={lost} duplicated={duplicated} stored_lost={stored_lost} "
            f"stored_doubled={stored_doubled}"
        )


if __name__ == "__main__":
    main()
