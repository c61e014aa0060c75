"""The database out of reach while a fleet sends: the ingest waits, resumes, and never
acknowledges what it did not store, so a `kill -9` during the outage loses nothing.

PostgreSQL: a cluster of the test's own, stopped at once (connections cut) for 15 s, then
again while the ingest is killed. SQLite: another connection holding the file's write
lock for 15 s, then again while the ingest is killed. The issue speaks of a minute; the
ingest behaves the same for 15 s (it retries with back-off up to 30 s between attempts,
and SQLite's own wait for the lock is 30 s).
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ingest.store import Store
from ingest.tables.intake import batches, gps_samples
from tests.ingest.test_durability import SAMPLES_PER_BATCH, Publisher, ingest_process
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.private_postgres import PrivatePostgres, postgres_bin
from tests.support.wait import wait_for

OUTAGE_S = 15
VEHICLES = ("vexin-01", "caux-01")


class Fleet:
    """Two buses publishing GPS batches (QoS 1, re-sent until the broker acknowledges)
    from a thread; ``sent`` holds the seqs acknowledged per bus."""

    def __init__(self, broker: Mosquitto) -> None:
        self._publisher = Publisher(broker)
        self.sent: dict[str, list[int]] = {v: [] for v in VEHICLES}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        seq = 0
        while not self._stop.is_set():
            for vehicle in VEHICLES:
                self._publisher.publish(vehicle, seq)
                self.sent[vehicle].append(seq)
            seq += 1
            time.sleep(0.02)

    def start(self) -> Fleet:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=40)
        self._publisher.close()


def lost_and_doubled(store: Store, fleet: Fleet) -> tuple[int, int]:
    """Samples sent but not stored, and samples stored more than once."""
    lost = doubled = 0
    b, g = batches.c, gps_samples.c
    with store.engine.connect() as conn:
        for vehicle, sent in fleet.sent.items():
            keys = {r[0] for r in conn.execute(sa.select(b.seq).where(b.vehicle == vehicle))}
            lost += len(set(sent) - keys) * SAMPLES_PER_BATCH
            rows, distinct = conn.execute(
                sa.select(sa.func.count(), sa.func.count(sa.distinct(g.t))).where(
                    g.vehicle == vehicle
                )
            ).one()
            doubled += rows - distinct
    return lost, doubled


def stored(store: Store) -> int:
    return store.count_batches()


def write_config(tmp_path: Path, database_url: str, broker: Mosquitto, itinerary: Path) -> Path:
    config = tmp_path / "ingest.toml"
    config.write_text(
        f'database_url = "{database_url}"\nitinerary_file = "{itinerary}"\n'
        f"metrics_port = {free_port()}\n"
        f'[broker]\nurl = "{broker.url}"\nclient_id = "ingest-outage"\n'
    )
    return config


def run_outages(
    store: Store,
    config: Path,
    broker: Mosquitto,
    cut: Callable[[], object],
    restore: Callable[[], object],
) -> None:
    ingest = ingest_process(config)
    fleet: Fleet | None = None
    try:
        # The broker keeps the ingest's session from its first subscription on: until
        # the ingest stored a first batch, keep offering it.
        first = Publisher(broker)

        def first_stored() -> bool:
            first.publish(VEHICLES[0], 0)
            return stored(store) > 0

        wait_for(first_stored, timeout=30, what="the ingest subscribed and storing")
        first.close()
        fleet = Fleet(broker).start()
        wait_for(lambda: stored(store) > 50, timeout=30, what="traffic stored")
        # 1. Out of reach for a while: the ingest waits, then resumes on its own.
        cut()
        time.sleep(OUTAGE_S)
        assert ingest.poll() is None, "the ingest gave up"
        during = sum(len(s) for s in fleet.sent.values())
        restore()
        wait_for(lambda: stored(store) >= during, timeout=60, what="the ingest resumed")
        # 2. Out of reach again, and the ingest killed meanwhile: what it took from the
        # broker and could not store was not acknowledged, so the broker has it still.
        cut()
        time.sleep(3)
        ingest.send_signal(signal.SIGKILL)
        ingest.wait()
        restore()
        fleet.stop()
        ingest = ingest_process(config)
        total = sum(len(s) for s in fleet.sent.values())
        wait_for(lambda: stored(store) >= total, timeout=60, what=f"all {total} batches")
        time.sleep(1)
        assert lost_and_doubled(store, fleet) == (0, 0)
        assert stored(store) == total
        assert store.rejection_counts() == {}, "an outage is not the data's fault"
    finally:
        if fleet is not None and fleet._thread.is_alive():
            fleet.stop()
        ingest.send_signal(signal.SIGTERM)
        try:
            ingest.wait(timeout=20)
        except subprocess.TimeoutExpired:
            ingest.kill()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    if postgres_bin() is None:
        pytest.skip("PostgreSQL's server programs are not installed (make system-deps)")
    server = PrivatePostgres().start()
    yield server
    server.remove()


def test_postgresql_stopped_and_restarted_loses_and_doubles_nothing(
    tmp_path: Path, mosquitto: Mosquitto, itinerary_file: Path, private_postgres: PrivatePostgres
) -> None:
    config = write_config(tmp_path, private_postgres.url, mosquitto, itinerary_file)
    store = Store.open(private_postgres.url)
    try:
        run_outages(store, config, mosquitto, private_postgres.stop, private_postgres.start)
    finally:
        store.close()
    # It did meet the outage: its writes failed and were offered again.
    assert "retrying" in (tmp_path / "ingest.log").read_text()


def test_sqlite_file_locked_by_another_writer_loses_and_doubles_nothing(
    tmp_path: Path, mosquitto: Mosquitto, itinerary_file: Path
) -> None:
    database = tmp_path / "cloud.sqlite"
    url = f"sqlite:///{database}"
    config = write_config(tmp_path, url, mosquitto, itinerary_file)
    store = Store.open(url)
    holder: list[sqlite3.Connection] = []

    def lock() -> None:
        conn = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
        conn.execute("BEGIN IMMEDIATE")  # the write lock, held until released
        holder.append(conn)

    def release() -> None:
        conn = holder.pop()
        conn.execute("ROLLBACK")
        conn.close()

    try:
        run_outages(store, config, mosquitto, lock, release)
    finally:
        while holder:
            release()
        store.close()
