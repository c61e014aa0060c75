"""``medicobus sim fleet`` and ``sim fleet-itinerary`` as a load tester runs them."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from ingest.itinerary import load_itinerary
from ingest.store import Store
from simulators.fleet import fleet_itinerary_toml, fleet_vehicle_ids
from tests.simulators.collector import BatchCollector
from tests.support.live import running_ingest
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.wait import wait_for

MEDICOBUS = str(Path(sys.executable).parent / "medicobus")


def sim(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MEDICOBUS, "sim", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def summary_of(stdout: str) -> dict[str, float]:
    last = stdout.strip().splitlines()[-1]
    return {k: float(v) for k, v in (pair.split("=") for pair in last.split())}


def test_fleet_itinerary_lists_the_fleet_for_an_ingest(tmp_path: Path) -> None:
    output = tmp_path / "fleet.toml"
    result = sim("fleet-itinerary", "3", "-o", str(output))
    assert result.returncode == 0, result.stderr
    itinerary = load_itinerary(output)
    assert [v.id for v in itinerary.vehicles] == ["fleet-0001", "fleet-0002", "fleet-0003"]
    assert len(itinerary.stops) == 6
    assert {s.weekday for s in itinerary.slots_of("fleet-0002")} == {1, 2, 3, 4, 5}
    assert fleet_itinerary_toml(3) == output.read_text()
    assert fleet_vehicle_ids(12)[-1] == "fleet-0012"


def test_fleet_publishes_valid_batches_that_an_ingest_stores(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    itinerary_file = tmp_path / "fleet.toml"
    itinerary_file.write_text(fleet_itinerary_toml(4))
    store = Store.open(f"sqlite:///{tmp_path / 'cloud.sqlite'}")
    store.load_fleet(load_itinerary(itinerary_file))
    try:
        with (
            running_ingest(store, mosquitto.url, "ingest-fleet") as ingestor,
            BatchCollector(mosquitto.host, mosquitto.port) as collector,
        ):
            result = sim(
                "fleet",
                "--vehicles", "4",
                "--broker", mosquitto.url,
                "--duration", "2",
                "--rate", "4",
                "--batch-window", "0.5",
                "--aux-period", "1",
                "--connections", "2",
                "--seq-start", "100",
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
            summary = summary_of(result.stdout)
            assert summary["vehicles"] == 4
            wait_for(
                lambda: len(collector.received()) >= summary["messages"],
                what="every fleet message at the subscriber",
            )
            batches = collector.received()
            assert not collector.invalid
            assert len(batches) == summary["messages"] == summary["acknowledged"]
            assert sum(len(b.samples) for b in batches) == summary["samples"]
            seqs: dict[tuple[str, str], list[int]] = defaultdict(list)
            for b in batches:
                seqs[(b.vehicle, b.stream)].append(b.seq)
            assert {v for v, _ in seqs} == set(fleet_vehicle_ids(4))
            for key, values in seqs.items():
                assert sorted(values) == list(range(100, 100 + len(values))), key
            # 2 s at 4 Hz, in windows of 0.5 s: 8 fixes in 4 batches per vehicle.
            for vehicle in fleet_vehicle_ids(4):
                fixes = collector.gps(vehicle)
                assert len(fixes) == 8
                assert len(seqs[(vehicle, "gps")]) == 4
                assert len(seqs[(vehicle, "energy")]) == len(seqs[(vehicle, "fridge")]) >= 2
                assert len({(f.lat, f.lon) for f in fixes}) == 8  # moving
            # The ingest knows these vehicles and stores their telemetry.
            wait_for(
                lambda: ingestor.counters["stored_batches"] >= summary["messages"],
                what="the ingest storing the fleet's batches",
            )
            assert ingestor.counters["stored_samples"] == summary["samples"]
            assert not [k for k in ingestor.counters if k.startswith("rejected")]
    finally:
        store.close()


def test_fleet_reports_a_bad_or_absent_broker() -> None:
    bad = sim("fleet", "--vehicles", "2", "--broker", "http://x", "--duration", "1")
    assert bad.returncode == 2
    assert "--broker 'http://x'" in bad.stderr
    absent = sim(
        "fleet",
        "--vehicles", "2",
        "--broker", f"mqtt://127.0.0.1:{free_port()}",
        "--duration", "1",
        "--connect-timeout", "1",
    )  # fmt: skip
    assert absent.returncode == 2
    assert "could not connect" in absent.stderr
