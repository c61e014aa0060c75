"""The whole ingest on a fleet's day: stored, de-duplicated and derived (stays and visits,
ETAs, fridge alarms and days, footprint days, alerts), by one ``medicobus ingest`` process
and then by N sharing a subscription, on PostgreSQL and a real Mosquitto.

The day (:mod:`simulators.fleet_day`) is published while the ingests are stopped (their
sessions kept by the broker), then the ingests are started and timed until every batch is
stored and its derived state done (no backlog row, no day left to rebuild). Last line:
``buses=… workers=… samples=… single_samples_per_s=… samples_per_s=… scale=…``.

Run: ``.venv/bin/python -m bench.fleet_day [--buses 20] [--workers 2]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from protocol.models import Batch
from simulators.fleet_day import fleet_day
from tests.support.databases import postgres_database
from tests.support.ingest_processes import last_monday, publish, settled, workers
from tests.support.mosquitto import Mosquitto
from tests.support.wait import wait_for

ITINERARY = Path(__file__).resolve().parent.parent / "tests" / "data" / "itineraries.toml"


def drain(workdir: Path, itinerary: Path, batches: list[Batch], count: int) -> float:
    """Seconds for ``count`` ingests to store and derive ``batches`` waiting in the broker."""
    with postgres_database() as database:
        broker = Mosquitto(workdir / "broker")
        broker.start()
        try:
            with workers(workdir, database, broker, itinerary, count):
                pass  # their sessions now wait in the broker
            publish(broker, batches)
            engine = sa.create_engine(database)
            start = time.perf_counter()
            try:
                with workers(workdir, database, broker, itinerary, count):
                    wait_for(
                        lambda: settled(engine, len(batches)),
                        timeout=3600,
                        what="every batch stored and derived",
                    )
                    return time.perf_counter() - start
            finally:
                engine.dispose()
        finally:
            broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buses", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    day = fleet_day(ITINERARY, args.buses, last_monday())
    batches = list(day.interleaved())
    print(f"{args.buses} buses' Monday: {len(batches)} batches, {day.samples} samples")
    print(f"machine: {os.cpu_count()} cores, shared by the broker, the ingests and PostgreSQL")
    with tempfile.TemporaryDirectory() as tmp:
        itinerary = Path(tmp) / "itineraries.toml"
        itinerary.write_text(day.itinerary_toml)
        single = drain(Path(tmp) / "single", itinerary, batches, 1)
        print(f"1 ingest: {single:.1f} s, {day.samples / single:.0f} samples/s")
        shared = drain(Path(tmp) / "shared", itinerary, batches, args.workers)
        print(f"{args.workers} ingests: {shared:.1f} s, {day.samples / shared:.0f} samples/s")
    print(
        f"buses={args.buses} workers={args.workers} samples={day.samples} "
        f"single_samples_per_s={day.samples / single:.0f} "
        f"samples_per_s={day.samples / shared:.0f} scale={single / shared:.2f}"
    )


if __name__ == "__main__":
    main()
