"""Nothing lost offline: a real GPS simulator on a pty, the agent, a real Mosquitto that
goes away and comes back, and an agent process killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_agent.agent import Agent
from edge_agent.outbox import Outbox
from firmware_config.agent import AgentConfig, BrokerConfig, GpsPortConfig
from protocol.clock import ScaledClock
from protocol.models import Batch, EventSample, GpsSample, StatusSample
from simulators.gps_device import GpsSimulator
from simulators.route import DriveRoute, Waypoint
from tests.edge_agent.mqtt_collector import BatchCollector
from tests.support.mosquitto import Mosquitto
from tests.support.wait import wait_for

MEDICOBUS = str(Path(sys.executable).parent / "medicobus")
VEHICLE = "caux-01"
GPS_HZ = 10.0
EPOCH = timedelta(seconds=1 / GPS_HZ)


@contextmanager
def gps_simulator() -> Iterator[GpsSimulator]:
    route = DriveRoute([Waypoint("a", 49.6175, 0.7539), Waypoint("b", 49.6558, 0.5911)], dwell_s=5)
    sim = GpsSimulator(route, ScaledClock(datetime.now(UTC)), rate_hz=GPS_HZ, route_offset_s=20)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


@contextmanager
def collector(broker: Mosquitto, client_id: str) -> Iterator[BatchCollector]:
    sub = BatchCollector(broker.host, broker.port, VEHICLE, client_id).start()
    try:
        yield sub
    finally:
        sub.stop()


def gps_times(batches: list[Batch]) -> list[datetime]:
    return [s.t for b in batches for s in b.samples]


def assert_exactly_once_in_order(sub: BatchCollector) -> list[datetime]:
    """After de-duplication by seq: seqs rise in arrival order, sample times rise, no
    sample travels under two seqs, and a seq delivered twice is the same message."""
    assert sub.duplicates_differ() == []
    batches = sub.batches("gps")
    seqs = [b.seq for b in batches]
    assert seqs == sorted(seqs), "batches of one stream arrived out of order"
    times = gps_times(batches)
    assert times == sorted(times)
    assert len(times) == len(set(times)), "a sample arrived under two different seqs"
    return times


def missing_epochs(times: list[datetime], start: datetime, end: datetime) -> list[datetime]:
    """Epochs of the simulator between ``start`` and ``end`` that never arrived."""
    got = set(times)
    missing, t = [], start
    while t <= end:
        if t not in got:
            missing.append(t)
        t += EPOCH
    return missing


def test_every_sample_read_while_the_broker_is_down_arrives_once_in_order(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    with gps_simulator() as sim, collector(mosquitto, "test-sub-outage") as sub:
        agent = Agent(
            AgentConfig(
                vehicle=VEHICLE,
                state_dir=tmp_path / "agent",
                gps=GpsPortConfig(port=sim.path, rate_hz=GPS_HZ, keep_every_s=0),
                broker=BrokerConfig(url=mosquitto.url, client_id="bus-caux-01"),
            )
        )
        agent.start()
        try:
            wait_for(lambda: len(gps_times(sub.batches("gps"))) >= 20, what="live GPS batches")
            before = len(sub.batches("gps"))
            mosquitto.stop()
            # Read and kept while the broker is away: 3 s of fixes at 10 Hz.
            fixes = agent.gps_counters.get("gps_fixes")
            wait_for(
                lambda: agent.gps_counters.get("gps_fixes") >= fixes + 30,
                what="GPS fixes read while the broker is down",
            )
            assert agent.outbox_depth >= 30
            agent.record_event("gps_antenna", "recorded while the broker is down")
            mosquitto.start()
            after = agent.gps_counters.get("gps_fixes")
            wait_for(
                lambda: len(gps_times(sub.batches("gps"))) >= after + 10,
                timeout=30,
                what="the backlog and live fixes after the broker is back",
            )
        finally:
            agent.stop()
    times = assert_exactly_once_in_order(sub)
    assert missing_epochs(times, times[0], times[-1]) == []
    events = [s for b in sub.batches("event") for s in b.samples if isinstance(s, EventSample)]
    assert [(e.kind, e.detail) for e in events] == [
        ("gps_antenna", "recorded while the broker is down")
    ]
    # The backlog left in batches larger than the live ones (one or a few fixes).
    catch_up = sub.batches("gps")[before:]
    assert max(len(b.samples) for b in catch_up) >= 20
    # The last status the broker keeps is the clean stop's, offline.
    statuses = [
        s
        for d in sub.deliveries
        if d.batch.stream == "status"
        for s in d.batch.samples
        if isinstance(s, StatusSample)
    ]
    assert any(s.online for s in statuses)
    last = max(statuses, key=lambda s: s.t)
    assert not last.online
    # Health: the backlog was reported when the link came back, with the counters.
    assert max(s.queue_depth for s in statuses) >= 30
    assert last.counters["gps.gps_fixes"] >= after
    assert last.counters["link.connects"] >= 2
    assert last.counters["link.losses"] >= 1
    # No ingest confirmed anything: the outbox keeps what it sent, the floor where it was.
    assert agent.outbox_depth >= len(times)
    assert last.held_from["gps"] == min(b.seq for b in sub.batches("gps"))


def committed_gps(state_dir: Path) -> list[GpsSample]:
    outbox = Outbox(state_dir / "outbox.sqlite", VEHICLE)
    try:
        return [s for s in outbox.stored_samples().get("gps", []) if isinstance(s, GpsSample)]
    finally:
        outbox.close()


@contextmanager
def agent_process(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [MEDICOBUS, "agent", "--config", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def kill(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def test_a_killed_agent_loses_nothing_it_had_committed(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    state_dir = tmp_path / "agent"
    config = tmp_path / "agent.toml"
    log = tmp_path / "agent.log"
    kills: list[tuple[set[datetime], datetime]] = []  # (committed, last epoch written)
    with gps_simulator() as sim, collector(mosquitto, "test-sub-kill") as sub:
        config.write_text(
            f'vehicle = "{VEHICLE}"\nstate_dir = "{state_dir}"\n'
            f'[broker]\nurl = "{mosquitto.url}"\nclient_id = "bus-caux-01"\n'
            f'[gps]\nport = "{sim.path}"\nrate_hz = {GPS_HZ}\nkeep_every_s = 0\n'
        )

        def received() -> set[datetime]:
            return set(gps_times(sub.batches("gps")))

        def killed(proc: subprocess.Popen[bytes]) -> set[datetime]:
            kill(proc)
            committed = {s.t for s in committed_gps(state_dir)}
            kills.append((committed | received(), sim.truth[-1][0]))
            return committed - received()

        # Killed while online: the broker publishes the retained last will.
        with agent_process(config, log) as proc:
            wait_for(lambda: len(received()) >= 30, what="live GPS batches")
            killed(proc)
        wait_for(
            lambda: any(
                not s.online
                for d in sub.deliveries
                if d.batch.stream == "status"
                for s in d.batch.samples
                if isinstance(s, StatusSample)
            ),
            what="the last will on the status topic",
        )
        # Killed while the broker is away, with a backlog committed and never sent.
        with agent_process(config, log) as proc:
            wait_for(lambda: max(received()) > kills[-1][1], what="the restarted agent's fixes")
            mosquitto.stop()
            written = len(sim.truth)
            wait_for(lambda: len(sim.truth) >= written + 30, what="3 s of fixes offline")
            unsent = killed(proc)
        assert len(unsent) >= 20
        mosquitto.start()
        with agent_process(config, log) as proc:
            wait_for(
                lambda: kills[-1][0] <= received(),
                timeout=30,
                what=f"every committed fix to arrive (see {log})",
            )
            wait_for(lambda: max(received()) > kills[-1][1], what="the restarted agent's fixes")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, log.read_text()
    times = assert_exactly_once_in_order(sub)
    assert "Traceback" not in log.read_text()
    # Within each life of the agent, from the first fix it read to the kill, only fixes
    # read after its last commit may be missing: at most a commit interval of them (1 s
    # at 10 Hz; the bound leaves room for a slow machine). What the receiver sent while
    # no agent had the port open was lost on the wire, not by the agent.
    previous_kill = times[0] - EPOCH
    for committed, killed_at in kills:
        first_read = min(t for t in times if t > previous_kill)
        lost = missing_epochs(times, first_read, killed_at)
        assert all(t > max(committed) for t in lost), (lost, max(committed))
        assert len(lost) <= 5 * GPS_HZ
        previous_kill = killed_at


@pytest.mark.parametrize("value", ["0.2", "-1"])
def test_a_commit_interval_under_a_second_is_refused(tmp_path: Path, value: str) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(f'vehicle = "{VEHICLE}"\n[outbox]\ncommit_interval_s = {value}\n')
    result = subprocess.run(
        [MEDICOBUS, "config", "validate", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "outbox.commit_interval_s" in result.stderr


def test_an_outbox_section_is_validated(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        f'vehicle = "{VEHICLE}"\n[outbox]\ncommit_interval_s = 2\nmax_bytes = 67108864\n'
        "max_batch_samples = 1000\n"
    )
    result = subprocess.run(
        [MEDICOBUS, "config", "validate", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"valid configuration for vehicle {VEHICLE}" in result.stdout


@pytest.mark.parametrize(
    ("section", "named"),
    [
        ("confirm_timeout_s = 0.5", "outbox.confirm_timeout_s"),
        ("confirm_timeout_s = 100\nconfirm_timeout_max_s = 50", "confirm_timeout_max_s"),
        ("confirm_timeout_max_s = 1e308", "outbox.confirm_timeout_max_s"),
    ],
)
def test_the_wait_for_the_ingest_confirmation_is_validated(
    tmp_path: Path, section: str, named: str
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(f'vehicle = "{VEHICLE}"\n[outbox]\n{section}\n')
    result = subprocess.run(
        [MEDICOBUS, "config", "validate", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert named in result.stderr
