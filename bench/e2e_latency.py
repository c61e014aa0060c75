"""From a sample's timestamp to its visibility in ``GET /api/v1/positions``.

100 simulated vehicles publish one GPS fix a second each, grouped per batch window as
the agent does, to a real Mosquitto; the ingest stores them in SQLite and the API serves
them over HTTP. A poller reads the positions continuously and, for every new fix, notes
when it first became visible. Last line: ``p50_ms=… p99_ms=… window_ms=…`` (target:
p99 ≤ window + 250 ms).

Run: ``.venv/bin/python -m bench.e2e_latency [--vehicles 100] [--seconds 30] [--window 1.0]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.ingest_throughput import fleet
from ingest.store import Store
from protocol import GpsBatch, GpsSample, encode, topic_for
from tests.support.live import running_api, running_ingest
from tests.support.mosquitto import Mosquitto


def publish_fleet(
    port: int, vehicles: int, seconds: float, window: float, stop: threading.Event
) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-latency-fleet")
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    pending: dict[str, list[GpsSample]] = {f"bus-{i:04d}": [] for i in range(vehicles)}
    seq = dict.fromkeys(pending, 0)
    start = time.time()
    next_fix = float(int(start) + 1)
    next_flush = start + window
    while time.time() - start < seconds and not stop.is_set():
        now = time.time()
        if now >= next_fix:
            t = datetime.fromtimestamp(next_fix, UTC)
            for i, vehicle in enumerate(pending):
                lat = 49.0 + i * 0.01 + (next_fix - start) * 1e-5
                pending[vehicle].append(GpsSample(t=t, lat=lat, lon=1.0, fix_mode=3))
            next_fix += 1.0
        if now >= next_flush:
            for vehicle, samples in pending.items():
                if samples:
                    batch = GpsBatch(vehicle=vehicle, seq=seq[vehicle], samples=samples)
                    client.publish(topic_for(vehicle, "gps"), encode(batch), qos=1)
                    seq[vehicle] += 1
                    pending[vehicle] = []
            next_flush += window
        time.sleep(
            min(next_fix, next_flush) - time.time()
            if min(next_fix, next_flush) > time.time()
            else 0
        )
    client.disconnect()
    client.loop_stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vehicles", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--window", type=float, default=1.0, help="batch window, seconds")
    args = parser.parse_args()
    latencies: list[float] = []
    with tempfile.TemporaryDirectory(prefix="medicobus-bench-") as tmp:
        broker = Mosquitto(Path(tmp) / "mosquitto").start()
        store = Store.open(f"sqlite:///{Path(tmp) / 'bench.sqlite'}")
        store.load_fleet(fleet(args.vehicles))
        stop = threading.Event()
        try:
            with (
                running_ingest(store, broker.url, "bench-latency-ingest"),
                running_api(store) as api,
            ):
                publisher = threading.Thread(
                    target=publish_fleet,
                    args=(broker.port, args.vehicles, args.seconds, args.window, stop),
                )
                publisher.start()
                seen: dict[str, str] = {}
                warmup_until = time.time() + 3
                while publisher.is_alive():
                    body = api.get("/api/v1/positions").json()
                    polled = time.time()
                    for feature in body["features"]:
                        vehicle, when = feature["id"], feature["properties"]["time"]
                        if seen.get(vehicle) != when:
                            seen[vehicle] = when
                            if polled > warmup_until:
                                t = datetime.fromisoformat(when).timestamp()
                                latencies.append((polled - t) * 1000)
                publisher.join()
        finally:
            stop.set()
            store.close()
            broker.stop()
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"{len(latencies)} fixes observed; max {latencies[-1]:.0f} ms")
    print(f"p50_ms={p50:.0f} p99_ms={p99:.0f} window_ms={args.window * 1000:.0f}")


if __name__ == "__main__":
    main()
