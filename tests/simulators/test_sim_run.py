"""``medicobus sim run``: a scenario's devices and edge agent against a real broker."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

from ingest.itinerary import Itinerary
from simulators.day_plan import plan_day
from simulators.geo import haversine_m
from simulators.scenario import load_scenario
from simulators.truth import truth_of
from tests.simulators.collector import BatchCollector
from tests.support.mosquitto import Mosquitto
from tests.support.wait import wait_for

MEDICOBUS = str(Path(sys.executable).parent / "medicobus")

SCENARIO = """
description = "Leaving the depot for Hébécourt, with a red light, a GPS outage and a network loss"
seed = 3

[vehicle]
id = "vexin-01"

[day]
date = 2026-11-18
start = "08:46"
end = "09:30"

[[event]]
kind = "traffic_light"
stop = "hebecourt"
wait_s = 45

[[event]]
kind = "gps_outage"
at = "08:47"
duration_min = 1

[[event]]
kind = "network_loss"
at = "08:51"
duration_min = 2
"""


def test_sim_run_drives_the_agent_through_the_scenario(
    tmp_path: Path, mosquitto: Mosquitto, itinerary_file: Path, itinerary: Itinerary
) -> None:
    scenario_file = tmp_path / "hebecourt.toml"
    scenario_file.write_text(SCENARIO)
    plan = plan_day(load_scenario(scenario_file), itinerary)
    truth = truth_of(plan)
    zone = itinerary.zone

    def local(hhmm: str) -> datetime:
        return datetime.combine(
            plan.scenario.day.date, datetime.strptime(hhmm, "%H:%M").time(), zone
        )

    with BatchCollector(mosquitto.host, mosquitto.port) as collector:
        result = subprocess.run(
            [
                MEDICOBUS, "sim", "run", str(scenario_file),
                "--broker", mosquitto.url,
                "--speed", "100",
                "--until", "09:00",
                "--itinerary", str(itinerary_file),
                "--state-dir", str(tmp_path / "agent"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        fixes = wait_for(
            lambda: (f := collector.gps("vexin-01")) and f[-1].t >= local("08:59") and f,
            what="the fixes of the last simulated minute",
        )
        statuses = [b for b in collector.received() if b.stream == "status"]
    out = result.stdout
    told = [
        "scenario hebecourt: vexin-01 on Wednesday 18 November 2026",
        "devices: GPS /dev/",
        "GPS receiver loses its fix",
        "GPS fix is back",
        "leaves the depot at Gisors",
        "mobile network lost",
        "mobile network back",
        "red light at the edge of Hébécourt's zone (45 s)",
        "arrives at Hébécourt (scheduled 09:00",
        "stopped: GPS",
        "link cut 1 time(s)",
    ]
    positions = [out.find(line) for line in told]
    assert all(p >= 0 for p in positions), out
    assert positions == sorted(positions), out
    assert not collector.invalid
    assert statuses

    outage = (local("08:47"), local("08:48"))
    assert not [f for f in fixes if outage[0] <= f.t < outage[1]]
    # Every epoch with a fix reached the broker, those of the network loss too.
    for a, b in pairwise(fixes):
        gap = b.t - a.t
        assert gap == timedelta(seconds=1) or (a.t < outage[0] and b.t >= outage[1]), (a.t, b.t)
    assert [f for f in fixes if local("08:51") <= f.t < local("08:53")]
    # What the agent published is where the bus really was, within the receiver's noise.
    for fix in fixes:
        motion = plan.motion_at(plan.seconds_of(fix.t))
        assert haversine_m(fix.lat, fix.lon, motion.lat, motion.lon) < 20.0
    hebecourt = itinerary.stop("hebecourt")
    visit = next(v for v in truth.visits if v.stop == "hebecourt")
    assert visit.arrival is not None
    parked = [f for f in fixes if f.t > visit.arrival + timedelta(seconds=5)]
    assert len(parked) > 60
    for fix in parked:
        assert haversine_m(fix.lat, fix.lon, hebecourt.lat, hebecourt.lon) < hebecourt.radius_m
        assert fix.speed_mps is not None and fix.speed_mps < 0.5
    (light,) = [r for r in truth.rests if r.duration_s < 60]
    at_light = [f for f in fixes if light.start + timedelta(seconds=3) <= f.t < light.end]
    assert len(at_light) >= 40
    assert all(f.speed_mps is not None and f.speed_mps < 0.5 for f in at_light)


def test_sim_run_reports_bad_arguments(tmp_path: Path) -> None:
    def sim_run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [MEDICOBUS, "sim", "run", *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    missing = sim_run(str(tmp_path / "absent.toml"), "--broker", "mqtt://127.0.0.1:1")
    assert missing.returncode == 2 and "no such scenario file" in missing.stderr
    unknown = sim_run("no-such-scenario", "--broker", "mqtt://127.0.0.1:1")
    assert unknown.returncode == 2 and "vexin-monday-on-time" in unknown.stderr
    bad_broker = sim_run("vexin-monday-on-time", "--broker", "tcp://x")
    assert bad_broker.returncode == 2 and "--broker 'tcp://x'" in bad_broker.stderr
    early = sim_run("vexin-monday-on-time", "--broker", "mqtt://127.0.0.1:1", "--until", "06:00")
    assert early.returncode == 2 and "before the scenario's start" in early.stderr


def test_sim_scenarios_and_truth_commands(tmp_path: Path) -> None:
    listed = subprocess.run(
        [MEDICOBUS, "sim", "scenarios"], capture_output=True, text=True, timeout=30, check=False
    )
    assert listed.returncode == 0
    assert len(listed.stdout.splitlines()) >= 8
    assert "vexin-drive-by: Drive-by of a stop without stopping [drive_by]" in listed.stdout
    truth = subprocess.run(
        [MEDICOBUS, "sim", "truth", "vexin-late-departure", "--date", "2026-11-23"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert truth.returncode == 0, truth.stderr
    body = json.loads(truth.stdout)
    assert body["day"] == "2026-11-23"
    first = body["visits"][0]
    assert first["stop"] == "vesly" and first["outcome"] == "visited"
    assert datetime.fromisoformat(first["arrival"]) > datetime.fromisoformat(
        first["scheduled_arrival"]
    ) + timedelta(minutes=15)
