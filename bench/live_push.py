"""From a sample's timestamp to the live push event carrying it, at each SSE client.

100 simulated vehicles (a process of their own) publish one GPS fix a second each, grouped
per batch window as the agent does, to a real Mosquitto; ``medicobus ingest`` (its own
process) stores them in SQLite; ``medicobus api`` (its own process) pushes ``positions``
events to 200 clients connected to ``GET /api/v1/live`` (httpx streams; 190 read in a
process of their own, as browsers elsewhere would). Every client reads its whole stream;
one in twenty (``--measure-every``) also parses it and notes, for each fix new to it, how
long after the fix's time the event reached it. A page polling ``GET /api/v1/positions``
at the same interval is measured beside them, as a baseline. The API's CPU use over the
measured period is read from ``/proc``.

Last line: ``p50_ms=… p99_ms=… window_ms=… clients=… api_cpu_pct=… p99_vs_polling=…``
(target: p99 ≤ window + 250 ms); above it, ``interval_ms`` (how often the API reads the
database, once for all its clients) and the polling page's figures.

Run: ``.venv/bin/python -m bench.live_push [--vehicles 100] [--clients 200] [--seconds 25]
[--window 1.0] [--interval 0.1]``; the default run takes under a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from api.auth import hash_token
from bench.e2e_latency import publish_fleet
from bench.ingest_throughput import fleet
from bench.procfs import cpu_seconds
from ingest.itinerary import itinerary_toml
from tests.support.mosquitto import Mosquitto, free_port

TOKEN = "bench-live-push-admin"
WARMUP_S = 5.0
MEDICOBUS = str(Path(sys.executable).with_name("medicobus"))


def start(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command, stdout=log.open("wb"), stderr=subprocess.STDOUT, env={**os.environ}
    )


def wait_healthy(base: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the API at {base} did not start")


@functools.lru_cache(maxsize=4096)
def _timestamp(when: str) -> float:
    # The fleet's fixes share their second: parsed once, not once per vehicle and client.
    return datetime.fromisoformat(when).timestamp()


def _pool(base: str, count: int) -> httpx.AsyncClient:
    # One pool for all: a connection per stream, one TLS set-up and parser configuration.
    return httpx.AsyncClient(
        base_url=base,
        timeout=httpx.Timeout(30.0),
        limits=httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10),
    )


async def reader(http: httpx.AsyncClient, connected: Any) -> None:
    """A client that reads what comes, as a browser would, without measuring."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with http.stream("GET", "/api/v1/live", headers=headers) as response:
        with connected.get_lock():
            connected.value += 1
        async for _ in response.aiter_raw():
            pass


async def readers(base: str, count: int, seconds: float, connected: Any) -> None:
    http = _pool(base, count)
    tasks = [asyncio.create_task(reader(http, connected)) for _ in range(count)]
    await asyncio.sleep(seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await http.aclose()


def run_readers(base: str, count: int, seconds: float, connected: Any) -> None:
    asyncio.run(readers(base, count, seconds, connected))


async def measuring_client(
    http: httpx.AsyncClient, latencies: list[float], connected: Any, measure_from: list[float]
) -> None:
    """Notes, for each fix new to it, how long after its time the event reached it."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    seen: dict[str, str] = {}
    async with http.stream("GET", "/api/v1/live", headers=headers) as response:
        with connected.get_lock():
            connected.value += 1
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "positions":
                arrived = time.time()
                for feature in json.loads(line[6:])["features"]:
                    vehicle, when = feature["id"], feature["properties"]["time"]
                    if seen.get(vehicle) != when:
                        seen[vehicle] = when
                        if measure_from[0] and arrived > measure_from[0]:
                            latencies.append((arrived - _timestamp(when)) * 1000)


async def poller(
    http: httpx.AsyncClient, interval: float, latencies: list[float], measure_from: list[float]
) -> None:
    """The baseline: a page polling ``GET /api/v1/positions`` every ``interval``."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    seen: dict[str, str] = {}
    while True:
        body = (await http.get("/api/v1/positions", headers=headers)).json()
        polled = time.time()
        for feature in body["features"]:
            vehicle, when = feature["id"], feature["properties"]["time"]
            if seen.get(vehicle) != when:
                seen[vehicle] = when
                if measure_from[0] and polled > measure_from[0]:
                    latencies.append((polled - _timestamp(when)) * 1000)
        await asyncio.sleep(interval)


async def measure(
    base: str,
    count: int,
    seconds: float,
    interval: float,
    connected: Any,
) -> tuple[list[float], list[float]]:
    """``count`` measuring clients and one poller, for ``seconds`` after a warm-up."""
    latencies: list[float] = []
    polled: list[float] = []
    measure_from = [0.0]
    http = _pool(base, count)
    tasks = [
        asyncio.create_task(measuring_client(http, latencies, connected, measure_from))
        for _ in range(count)
    ]
    tasks.append(asyncio.create_task(poller(http, interval, polled, measure_from)))
    await asyncio.sleep(WARMUP_S)
    measure_from[0] = time.time()
    await asyncio.sleep(seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await http.aclose()
    return latencies, polled


def percentiles(values: list[float]) -> tuple[float, float]:
    values = sorted(values)
    return statistics.median(values), values[max(0, int(len(values) * 0.99) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vehicles", type=int, default=100)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--window", type=float, default=1.0, help="agent's batch window, s")
    parser.add_argument("--interval", type=float, default=0.1, help="API's live read, s")
    parser.add_argument("--measure-every", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="medicobus-bench-") as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "mosquitto").start()
        database = f"sqlite:///{work / 'bench.sqlite'}"
        (work / "fleet.toml").write_text(itinerary_toml(fleet(args.vehicles)))
        (work / "ingest.toml").write_text(
            f'database_url = "{database}"\nitinerary_file = "{work / "fleet.toml"}"\n'
            f"metrics_port = {free_port()}\n"
            f'[broker]\nurl = "{broker.url}"\nclient_id = "bench-live-ingest"\n'
        )
        port = free_port()
        (work / "api.toml").write_text(
            f'database_url = "{database}"\nport = {port}\nlive_interval_s = {args.interval}\n'
            f'[[users]]\nname = "bench"\nrole = "admin"\ntoken_sha256 = "{hash_token(TOKEN)}"\n'
        )
        ingest = start([MEDICOBUS, "ingest", "--config", str(work / "ingest.toml")], work / "i.log")
        base = f"http://127.0.0.1:{port}"
        api = None
        publisher: multiprocessing.Process | None = None
        latencies: list[float] = []
        polled: list[float] = []
        try:
            time.sleep(2)  # the ingest creates the schema and loads the fleet first
            api = start([MEDICOBUS, "api", "--config", str(work / "api.toml")], work / "a.log")
            wait_healthy(base)
            connected = multiprocessing.Value("i", 0)
            measured = max(1, args.clients // args.measure_every)
            # The other clients read in a process of their own, as browsers on other
            # machines would: their reading does not delay the measuring ones.
            others = multiprocessing.Process(
                target=run_readers,
                args=(base, args.clients - measured, args.seconds + WARMUP_S + 2, connected),
                daemon=True,
            )
            others.start()
            # The fleet publishes from a process of its own, as buses do: the clients'
            # work here does not delay its fixes.
            publisher = multiprocessing.Process(
                target=publish_fleet,
                args=(broker.port, args.vehicles, float("inf"), args.window, threading.Event()),
                daemon=True,
            )
            publisher.start()
            cpu_before = cpu_seconds(api.pid)
            wall_before = time.monotonic()
            latencies, polled = asyncio.run(
                measure(base, measured, args.seconds, args.interval, connected)
            )
            api_cpu = (cpu_seconds(api.pid) - cpu_before) / (time.monotonic() - wall_before)
            others.join(timeout=30)
        finally:
            if publisher is not None:
                publisher.terminate()
                publisher.join(timeout=10)
            for process in (api, ingest):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=20)
            broker.stop()
            if not latencies:
                for name in ("i.log", "a.log"):
                    tail = (work / name).read_text(errors="replace").splitlines()[-5:]
                    print(f"{name}:", *tail, sep="\n  ", file=sys.stderr)
    if not latencies or not polled:
        raise SystemExit("no fix reached a client: see the logs")
    p50, p99 = percentiles(latencies)
    poll_p50, poll_p99 = percentiles(polled)
    print(
        f"{len(latencies)} fix arrivals observed at {measured} of {connected.value} clients "
        f"(the others read in another process); max {max(latencies):.0f} ms"
    )
    print(
        f"baseline, one page polling GET /api/v1/positions every {args.interval * 1000:.0f} ms: "
        f"p50_ms={poll_p50:.0f} p99_ms={poll_p99:.0f}"
    )
    print(f"interval_ms={args.interval * 1000:.0f} target_p99_ms={args.window * 1000 + 250:.0f}")
    print(
        f"p50_ms={p50:.0f} p99_ms={p99:.0f} window_ms={args.window * 1000:.0f} "
        f"clients={connected.value} api_cpu_pct={api_cpu * 100:.0f} "
        f"p99_vs_polling={p99 / poll_p99:.2f}"
    )


if __name__ == "__main__":
    main()
