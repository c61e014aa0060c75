"""The production processes, each started as a newcomer would: ``medicobus ingest``,
``medicobus api`` and ``medicobus agent`` with their TOML files, on a real Mosquitto."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx

from api.auth import hash_token
from protocol.clock import ScaledClock
from simulators.geo import haversine_m
from simulators.gps_device import GpsSimulator
from simulators.route import DriveRoute, Waypoint
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.wait import wait_for

MEDICOBUS = str(Path(sys.executable).parent / "medicobus")


@contextmanager
def process(*args: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [MEDICOBUS, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            output, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        assert "Traceback" not in output, output


def test_agent_ingest_and_api_as_separate_processes(
    tmp_path: Path, mosquitto: Mosquitto, itinerary_file: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'cloud.sqlite'}"
    port = free_port()
    metrics_port = free_port()
    (tmp_path / "ingest.toml").write_text(
        f'database_url = "{database}"\nitinerary_file = "{itinerary_file}"\n'
        f"metrics_port = {metrics_port}\n"
        f'[broker]\nurl = "{mosquitto.url}"\nclient_id = "ingest-proc"\n'
    )
    (tmp_path / "api.toml").write_text(
        f'database_url = "{database}"\nport = {port}\n'
        f'[[users]]\nname = "Camille"\nrole = "fleet_manager"\noperator = "cpts-caux"\n'
        f'token_sha256 = "{hash_token("camille-token")}"\n'
    )
    route = DriveRoute([Waypoint("a", 49.6175, 0.7539), Waypoint("b", 49.6558, 0.5911)], dwell_s=10)
    sim = GpsSimulator(route, ScaledClock(datetime.now(UTC)), rate_hz=2.0, route_offset_s=30)
    sim.start()
    (tmp_path / "agent.toml").write_text(
        f'vehicle = "caux-01"\nstate_dir = "{tmp_path / "agent"}"\nbatch_window_s = 0.5\n'
        f'[broker]\nurl = "{mosquitto.url}"\n[gps]\nport = "{sim.path}"\n'
    )
    try:
        with (
            process("ingest", "--config", str(tmp_path / "ingest.toml")),
            process("api", "--config", str(tmp_path / "api.toml")),
            process("agent", "--config", str(tmp_path / "agent.toml")),
        ):

            def position() -> dict[str, object] | None:
                try:
                    features = httpx.get(
                        f"http://127.0.0.1:{port}/api/v1/positions",
                        headers={"Authorization": "Bearer camille-token"},
                    ).json()
                except httpx.TransportError:
                    return None
                return features["features"][0] if features["features"] else None

            feature = wait_for(position, what="a position served by the API process")
            lon, lat = feature["geometry"]["coordinates"]  # type: ignore[index]
            when = datetime.fromisoformat(feature["properties"]["time"])  # type: ignore[index]
            truth = sim.truth_at(when)
            assert truth is not None
            assert haversine_m(lat, lon, *truth) < 5.0

            metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
            stored = re.search(
                r'medicobus_ingest_messages_total\{outcome="stored"\} (\S+)', metrics
            )
            assert stored is not None, metrics
            assert float(stored.group(1)) >= 1
            assert "medicobus_ingest_lag_seconds_bucket" in metrics
    finally:
        sim.stop()


def test_ingest_refuses_a_broken_configuration(tmp_path: Path) -> None:
    (tmp_path / "ingest.toml").write_text('database_url = 3\nitinerary_file = "/nowhere.toml"\n')
    result = subprocess.run(
        [MEDICOBUS, "ingest", "--config", str(tmp_path / "ingest.toml")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "database_url" in result.stderr


def test_edge_agent_does_not_import_cloud_libraries() -> None:
    code = (
        "import sys, edge_agent.agent, firmware_config, protocol, medicobus.cli\n"
        "cloud = {'fastapi', 'sqlalchemy', 'influxdb_client', 'uvicorn', 'amqtt',\n"
        "         'ingest', 'api'}\n"
        "print(sorted(cloud & {m.split('.')[0] for m in sys.modules}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
