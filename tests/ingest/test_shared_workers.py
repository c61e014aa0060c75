"""Three ingests sharing one subscription (``$share/…``) on one PostgreSQL database give
the derived state one ingest gives: stays and visits, fridge alarms and days, footprint
days, alerts. 20 buses' Monday (simulators/fleet_day.py) is sent through a real
Mosquitto to ``medicobus ingest`` processes; in the shared run one of them is killed
(``kill -9``) in the middle and started again, as its supervisor would. The derived rows
of the two databases are then compared one by one."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ingest.domain import IngestDomain
from ingest.itinerary import load_itinerary
from ingest.settings import DomainSettings
from ingest.store import Store
from ingest.tables import metadata
from simulators.fleet_day import FleetDay, fleet_day
from tests.support.databases import postgres_available, postgres_database
from tests.support.ingest_processes import Worker, last_monday, publish, settled, workers
from tests.support.mosquitto import Mosquitto
from tests.support.wait import wait_for

BUSES = 20
# What each derived table is compared on: all but its row ids, when it was computed, and
# what depends on the hour it was computed at (ETAs, an alert's wording).
VOLATILE = {
    "id",
    "computed_at",
    "raised_at",
    "updated_at",
    "withdrawn_at",
    "cleared_at",
    "message",
    "detail",
    "eta",
    "eta_from",
    "eta_distance_m",
    "eta_state",
    "eta_earliest",
    "eta_latest",
    "eta_source",
}
DERIVED = [
    "stop_events",
    "visits",
    "unscheduled_stops",
    "fridge_alarms",
    "fridge_days",
    "footprint_days",
    "alerts",
]

pytestmark = pytest.mark.skipif(postgres_available() is not None, reason=str(postgres_available()))


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, itinerary_file: Path) -> tuple[FleetDay, Path]:
    day = fleet_day(itinerary_file, BUSES, last_monday(), fix_every_s=30, batch_s=300)
    path = tmp_path_factory.mktemp("fleet") / "itineraries.toml"
    path.write_text(day.itinerary_toml)
    return day, path


def derived_rows(database: str, itinerary: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every derived table's rows, once the alerts have been evaluated afresh (which
    raises what is missing but never merges what was raised twice)."""
    store = Store.open(database)
    try:
        domain = IngestDomain(store, load_itinerary(itinerary), DomainSettings())
        domain.catch_up()
        rows: dict[str, list[tuple[Any, ...]]] = {}
        with store.engine.connect() as conn:
            alarm_keys = {
                str(r.id): r.key for r in conn.execute(sa.text("SELECT id, key FROM fridge_alarms"))
            }
            for name in DERIVED:
                table = metadata.tables[name]
                columns = [c for c in table.c if c.name not in VOLATILE]
                found = [r._asdict() for r in conn.execute(sa.select(*columns))]
                if name == "alerts":
                    # A fridge alert's subject is its alarm's row id: compared by the
                    # alarm's own key.
                    for r in found:
                        if r["kind"].startswith("fridge_"):
                            r["subject"] = alarm_keys.get(r["subject"], r["subject"])
                rows[name] = sorted((tuple(r.values()) for r in found), key=repr)
        return rows
    finally:
        store.close()


@pytest.mark.timeout(600)
def test_three_shared_workers_derive_what_one_does_even_with_one_killed(
    tmp_path: Path, fleet: tuple[FleetDay, Path]
) -> None:
    day, itinerary = fleet
    batches = list(day.interleaved())
    results: dict[str, dict[str, list[tuple[Any, ...]]]] = {}
    for run, count in (("single", 1), ("shared", 3)):
        workdir = tmp_path / run
        with ExitStack() as stack:
            database = stack.enter_context(postgres_database())
            broker = Mosquitto(workdir / "broker")
            broker.start()
            stack.callback(broker.stop)
            # Runs once the workers have stopped, before the database goes.
            stack.callback(
                lambda run=run, database=database: results.__setitem__(
                    run, derived_rows(database, itinerary)
                )
            )
            running = stack.enter_context(workers(workdir, database, broker, itinerary, count))
            killed_at: list[int] = []

            def kill_one_midway(
                sent: int, running: list[Worker] = running, killed_at: list[int] = killed_at
            ) -> None:
                if len(running) > 1 and not killed_at and sent >= len(batches) * 2 // 5:
                    killed_at.append(sent)
                    running[1].kill()

            publish(broker, batches, kill_one_midway)
            if count > 1:
                assert killed_at, "the worker was not killed"
                running[1].start()  # its supervisor starts it again
            engine = sa.create_engine(database)
            try:
                wait_for(
                    lambda engine=engine: settled(engine, len(batches)),
                    timeout=300,
                    what=f"{run}: every batch stored and derived",
                )
                time.sleep(2.0)  # the alerts of the last batches evaluated
                shares = [w.stored() for w in running]
                # The load was shared: each worker stored a good part of it.
                assert all(n > len(batches) / (4 * count) for n in shares), shares
                if count > 1:
                    # What the killed worker had stored but not derived was derived again.
                    logs = "".join(w.log.read_text() for w in running)
                    assert "now gone" in logs
            finally:
                engine.dispose()
    single, shared = results["single"], results["shared"]
    # The day gave something to compare: visits made, alarms raised, alerts.
    assert len(single["stop_events"]) > 4 * BUSES
    assert single["fridge_alarms"], "no fridge alarm in the day"
    assert len(single["footprint_days"]) >= BUSES
    assert single["alerts"], "no alert in the day"
    for name in DERIVED:
        missing = sorted(set(single[name]) - set(shared[name]), key=repr)[:5]
        extra = sorted(set(shared[name]) - set(single[name]), key=repr)[:5]
        assert len(shared[name]) == len(single[name]) and not missing and not extra, (
            f"{name}: {len(single[name])} rows with one worker, {len(shared[name])} with "
            f"three; missing {missing}; extra {extra}"
        )
