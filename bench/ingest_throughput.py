"""Ingest throughput on one real Mosquitto, against a bare subscriber in the same run.

Many simulated vehicles publish QoS 1 batches while two persistent sessions are
subscribed but offline: a bare paho subscriber that does nothing, and the ingest. Then
each drains the same backlog alone; the ingest counts as done when every batch is
committed to SQLite. Rates are sustained rates, counted from the first message each got
through; the total times, start-up included, are printed above, and so is the CPU each
process used while the ingest drained (what limits it). Last line:
``msgs_per_s=… samples_per_s=… bare_msgs_per_s=… ratio=…``.

Run: ``.venv/bin/python -m bench.ingest_throughput [--messages 40000] [--vehicles 200]``

With ``--workers N --database postgresql``: the same backlog drained on PostgreSQL by one
ingest, then again by N ingest processes sharing a ``$share/bench/…`` subscription (as
``shared_group`` does), each with its own client id; last line
``workers=… samples_per_s=… single_samples_per_s=… scale=…``.

Both measure the intake as the ingest runs it — batches and samples stored and
de-duplicated, each group's backlog row, each vehicle's derivation step taken under its
lock (a PostgreSQL advisory lock with ``--workers``) — with no domain observer behind it
(visits, days and alerts are measured by their own benchmarks).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.procfs import busy_share, cpu_seconds, machine_ticks
from firmware_config.agent import BrokerConfig
from ingest.derivation import Derivation
from ingest.itinerary import Itinerary
from ingest.pipeline import Ingestor
from ingest.runtime import settle_heap
from ingest.store import Coordinator, Store, create_engine
from ingest.subscriber import IngestSubscriber
from protocol import GpsBatch, GpsSample, encode, topic_for
from protocol.topics import subscription
from tests.support.databases import postgres_database
from tests.support.mosquitto import Mosquitto

SHARED_GROUP = "bench"


def fleet(n: int) -> Itinerary:
    return Itinerary.model_validate(
        {
            "operator": [{"id": "bench", "name": "Bench"}],
            "stop": [{"id": "depot", "name": "Depot", "lat": 49.0, "lon": 1.0, "radius_m": 100}],
            "vehicle": [
                {
                    "id": f"bus-{i:04d}",
                    "operator": "bench",
                    "label": f"Bus {i}",
                    "traction": "diesel",
                    "depot": "depot",
                }
                for i in range(n)
            ],
        }
    )


def publish(port: int, vehicles: int, messages: int, per_batch: int) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-fleet")
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    # Far enough back that the last batch is not in the future, whatever the count.
    start = datetime.now(UTC) - timedelta(seconds=(messages // vehicles + 1) * per_batch + 600)
    info = None
    for m in range(messages):
        vehicle, seq = f"bus-{m % vehicles:04d}", m // vehicles
        t0 = start + timedelta(seconds=seq * per_batch)
        batch = GpsBatch(
            vehicle=vehicle,
            seq=seq,
            samples=[
                GpsSample(
                    t=t0 + timedelta(seconds=k),
                    lat=49.0 + k * 1e-5,
                    lon=1.0,
                    speed_mps=12.0,
                    course_deg=90.0,
                    fix_mode=3,
                    sats=9,
                    hdop=0.9,
                )
                for k in range(per_batch)
            ],
        )
        info = client.publish(topic_for(vehicle, "gps"), encode(batch), qos=1)
        while len(client._out_messages) > 5000:
            time.sleep(0.001)
    if info is not None:
        info.wait_for_publish(timeout=120)
    client.disconnect()
    client.loop_stop()


def register_session(port: int, client_id: str, shared: bool = False) -> None:
    """Create a persistent session subscribed to the telemetry (through the shared group
    with ``shared``), then go offline."""
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    client.on_subscribe = lambda *a: done.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    topic = subscription()
    client.subscribe(f"$share/{SHARED_GROUP}/{topic}" if shared else topic, qos=1)
    done.wait(10)
    client.disconnect()
    client.loop_stop()


@dataclass(frozen=True)
class Drain:
    """How a subscriber drained the backlog: ``total_s`` from its start to the last
    message, and its sustained rate, counted from the first message it got through (so
    that starting a process or connecting is not counted as throughput)."""

    total_s: float
    msgs_per_s: float
    cpu: str = ""


def bare_drain(port: int, messages: int) -> Drain:
    received = 0
    first = last = 0.0
    done = threading.Event()

    def on_message(*_: Any) -> None:
        nonlocal received, first, last
        received += 1
        last = time.perf_counter()
        if received == 1:
            first = last
        if received >= messages:
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare", clean_session=False)
    client.max_inflight_messages_set(1000)
    client.on_message = on_message
    start = time.perf_counter()
    client.connect("127.0.0.1", port)
    client.loop_start()
    if not done.wait(600):
        raise SystemExit(f"bare subscriber got {received} of {messages}")
    client.disconnect()
    client.loop_stop()
    return Drain(last - start, (messages - 1) / (last - first))


def intake_of(store: Store, *, shared: bool) -> Ingestor:
    """The ingest's intake as ``medicobus ingest`` runs it: each group stored with its
    backlog row, each vehicle's derivation step taken (under its lock, shared or not),
    with no observer behind it."""
    coordinator = Coordinator(store.engine, shared=shared)
    return Ingestor(store, derivation=Derivation(store, coordinator, observers=[]))


def ingest_drain(port: int, broker_pid: int, store: Store, messages: int) -> Drain:
    """The ingest, set up as ``medicobus ingest`` does, until it has committed every
    message; its own counters say when (counting rows in SQL would compete with it)."""
    ingestor = intake_of(store, shared=False)
    subscriber = IngestSubscriber(
        ingestor, BrokerConfig(url=f"mqtt://127.0.0.1:{port}", client_id="bench-ingest")
    )
    settle_heap()
    start = time.perf_counter()
    subscriber.start()
    receiver_pid = subscriber.receiver_pid
    assert receiver_pid is not None  # started with the subscriber
    pids = {
        "ingest process (writer)": os.getpid(),
        "its receiver process": receiver_pid,
        "broker": broker_pid,
    }
    first: tuple[float, int] | None = None
    cpu_at_first: dict[str, float] = {}
    while (stored := ingestor.counters["stored_batches"]) < messages:
        if first is None and stored:
            first = (time.perf_counter(), stored)
            cpu_at_first = {name: cpu_seconds(pid) for name, pid in pids.items()}
        time.sleep(0.02)
        if time.perf_counter() - start > 900:
            raise SystemExit(f"ingest stored {stored} of {messages}")
    end = time.perf_counter()
    # Read before the stop, while the receiver process still exists.
    cpu = (
        ""
        if first is None
        else ", ".join(
            f"{name} {100 * (cpu_seconds(pid) - cpu_at_first[name]) / (end - first[0]):.0f} %"
            for name, pid in pids.items()
        )
    )
    subscriber.stop()
    in_store = store.count_batches()
    if in_store != messages:
        raise SystemExit(f"the store holds {in_store} batches, not {messages}")
    if first is None:
        raise SystemExit("the ingest committed everything in one group: send more messages")
    return Drain(end - start, (messages - first[1]) / (end - first[0]), cpu)


def _worker(url: str, port: int, client_id: str, stored: Any, go: Any) -> None:
    """One ingest process of a shared group: stores what the broker gives it until told
    to stop; its stored batches are counted in ``stored`` (shared memory)."""
    store = Store(create_engine(url))
    ingestor = intake_of(store, shared=True)
    subscriber = IngestSubscriber(
        ingestor,
        BrokerConfig(url=f"mqtt://127.0.0.1:{port}", client_id=client_id),
        shared_group=SHARED_GROUP,
    )
    subscriber.start()
    while not go.is_set():
        with stored.get_lock():
            stored.value = ingestor.counters["stored_batches"]
        time.sleep(0.01)
    subscriber.stop()
    store.close()


def shared_drain(
    url: str, port: int, workers: int, *, messages: int, per_batch: int, vehicles: int
) -> Drain:
    """The backlog drained by ``workers`` ingest processes sharing one subscription; the
    rate is counted from the first batch stored to the last, over all of them."""
    for i in range(workers):
        register_session(port, f"bench-w{workers}-{i}", shared=True)
    publisher = multiprocessing.Process(target=publish, args=(port, vehicles, messages, per_batch))
    publisher.start()
    publisher.join()
    counts = [multiprocessing.Value("q", 0) for _ in range(workers)]
    stop = multiprocessing.Event()
    procs = [
        multiprocessing.Process(target=_worker, args=(url, port, f"bench-w{workers}-{i}", c, stop))
        for i, c in enumerate(counts)
    ]
    start = time.perf_counter()
    for p in procs:
        p.start()
    first: tuple[float, int] | None = None
    ticks = machine_ticks()
    while (done := sum(c.value for c in counts)) < messages:
        if first is None and done:
            first = (time.perf_counter(), done)
            ticks = machine_ticks()
        time.sleep(0.01)
        if time.perf_counter() - start > 900:
            raise SystemExit(f"{workers} workers stored {done} of {messages}")
    end = time.perf_counter()
    busy = busy_share(ticks, machine_ticks())
    stop.set()
    for p in procs:
        p.join(timeout=30)
    share = ", ".join(str(c.value) for c in counts)
    if first is None:
        raise SystemExit("everything was committed in one group: send more messages")
    rate = (messages - first[1]) / (end - first[0])
    return Drain(
        end - start,
        rate,
        f"batches per worker: {share}; the machine's cores {100 * busy:.0f} % busy meanwhile",
    )


def workers_main(args: argparse.Namespace) -> None:
    if args.database != "postgresql":
        raise SystemExit("several workers need PostgreSQL: --database postgresql")
    results: dict[int, Drain] = {}
    for n in (1, args.workers):
        with (
            tempfile.TemporaryDirectory(prefix="medicobus-bench-") as tmp,
            postgres_database() as url,
        ):
            broker = Mosquitto(Path(tmp) / "mosquitto", max_inflight=args.inflight).start()
            try:
                store = Store.open(url)
                store.load_fleet(fleet(args.vehicles))
                store.close()
                results[n] = shared_drain(
                    url,
                    broker.port,
                    n,
                    messages=args.messages,
                    per_batch=args.samples_per_batch,
                    vehicles=args.vehicles,
                )
            finally:
                broker.stop()
        d = results[n]
        print(f"{n} worker(s): {d.total_s:.2f} s in all, {d.msgs_per_s:.0f} msgs/s; {d.cpu}")
    single = results[1].msgs_per_s * args.samples_per_batch
    many = results[args.workers].msgs_per_s * args.samples_per_batch
    print(f"machine: {os.cpu_count()} cores, shared by the broker, the workers and PostgreSQL")
    print(
        f"workers={args.workers} samples_per_s={many:.0f} "
        f"single_samples_per_s={single:.0f} scale={many / single:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=40_000)
    parser.add_argument("--vehicles", type=int, default=200)
    parser.add_argument("--samples-per-batch", type=int, default=10)
    parser.add_argument("--inflight", type=int, default=1000, help="broker max_inflight_messages")
    parser.add_argument("--workers", type=int, default=0, help="ingest processes sharing")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    if args.workers:
        workers_main(args)
        return
    with tempfile.TemporaryDirectory(prefix="medicobus-bench-") as tmp:
        broker = Mosquitto(Path(tmp) / "mosquitto", max_inflight=args.inflight).start()
        try:
            # As ``medicobus ingest`` opens it: SQLite's log checkpointed in the background.
            store = Store.open(
                f"sqlite:///{Path(tmp) / 'bench.sqlite'}", background_checkpoints=True
            )
            store.load_fleet(fleet(args.vehicles))
            register_session(broker.port, "bench-bare")
            register_session(broker.port, "bench-ingest")
            publisher = multiprocessing.Process(
                target=publish,
                args=(broker.port, args.vehicles, args.messages, args.samples_per_batch),
            )
            t0 = time.perf_counter()
            publisher.start()
            publisher.join()
            print(f"published {args.messages} messages in {time.perf_counter() - t0:.1f} s")
            bare = bare_drain(broker.port, args.messages)
            assert broker.pid is not None  # started above
            ingest = ingest_drain(broker.port, broker.pid, store, args.messages)
            store.close()
        finally:
            broker.stop()
    print(
        f"bare subscriber: {bare.total_s:.2f} s in all; "
        f"ingest: {ingest.total_s:.2f} s in all, starting its receiver process included"
    )
    print(f"CPU while the ingest drained, per process (100 % = one core): {ingest.cpu}")
    msgs, bare_rate = ingest.msgs_per_s, bare.msgs_per_s
    print(
        f"msgs_per_s={msgs:.0f} samples_per_s={msgs * args.samples_per_batch:.0f} "
        f"bare_msgs_per_s={bare_rate:.0f} ratio={msgs / bare_rate:.2f}"
    )


if __name__ == "__main__":
    main()
