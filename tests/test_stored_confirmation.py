"""End to end, nothing lost and nothing counted twice when the broker crashes: real
Mosquitto (persistence and autosave as deployed, passwords, the deployed ACL), the real
ingest process, and two agents whose outbox and publisher are fed by a sample generator.
The broker is killed with SIGKILL with messages in flight, with and without the ingest
running, and finally restarted from an empty persistence directory.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.agent import Agent
from edge_agent.outbox import Outbox
from firmware_config.agent import AgentConfig, BrokerConfig, OutboxConfig
from ingest.itinerary import Itinerary
from ingest.store import Store
from ingest.tables.intake import energy_samples, gps_samples
from protocol.clock import ScaledClock
from protocol.models import EnergySample, GpsSample
from protocol.topics import confirmation_topic
from simulators.gps_device import GpsSimulator
from simulators.route import DriveRoute, Waypoint
from tests.support.live import running_ingest
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.wait import wait_for

MEDICOBUS = str(Path(sys.executable).parent / "medicobus")
ACL = Path(__file__).parent.parent / "deploy" / "medicobus.acl"
VEHICLES = ("vexin-01", "caux-01")
INGEST_USER = "medicobus-ingest"
PASSWORDS = {INGEST_USER: "ingest-secret", **{v: f"{v}-secret" for v in VEHICLES}}
GPS_EVERY_S = 0.05
ENERGY_EVERY = 10  # one energy sample per 10 fixes


class Feeder:
    """Records samples into an agent at a steady rate, as its readers would, and keeps
    every sample time it recorded: what the bus read."""

    def __init__(self, agent: Agent, start: datetime) -> None:
        self.agent = agent
        self.start_t = start
        self.gps: list[datetime] = []
        self.energy: list[datetime] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self._stop.wait(GPS_EVERY_S):
            t = self.start_t + timedelta(milliseconds=100 * i)
            self.agent.record(GpsSample(t=t, lat=49.2 + i * 1e-6, lon=1.6, fix_mode=3))
            self.gps.append(t)
            if i % ENERGY_EVERY == 0:
                self.agent.record(EnergySample(t=t, voltage_v=12.8, soc_pct=80.0))
                self.energy.append(t)
            i += 1

    def start(self) -> Feeder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def agent_config(tmp_path: Path, vehicle: str, broker: Mosquitto) -> AgentConfig:
    return AgentConfig(
        vehicle=vehicle,
        state_dir=tmp_path / vehicle,
        status_interval_s=2,
        broker=BrokerConfig(url=broker.url, username=vehicle, password=PASSWORDS[vehicle]),
        outbox=OutboxConfig(confirm_timeout_s=3, confirm_timeout_max_s=6),
    )


def ingest_config(tmp_path: Path, broker: Mosquitto, itinerary: Path) -> Path:
    database = tmp_path / "cloud.sqlite"
    config = tmp_path / "ingest.toml"
    config.write_text(
        f'database_url = "sqlite:///{database}"\nitinerary_file = "{itinerary}"\n'
        f"metrics_port = {free_port()}\n"
        f'[broker]\nurl = "{broker.url}"\nclient_id = "{INGEST_USER}"\n'
        f'username = "{INGEST_USER}"\npassword = "{PASSWORDS[INGEST_USER]}"\n'
    )
    return config


class Ingest:
    def __init__(self, config: Path) -> None:
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.config.parent / "ingest.log").open("ab")
        self.proc = subprocess.Popen(
            [MEDICOBUS, "ingest", "--config", str(self.config)], stdout=log, stderr=log
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.proc = None


def stored_times(store: Store, table: sa.Table, vehicle: str) -> list[datetime]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.t).where(table.c.vehicle == vehicle))
        return [r[0] if r[0].tzinfo else r[0].replace(tzinfo=UTC) for r in rows]


def lost_and_doubled(recorded: list[datetime], stored: list[datetime]) -> tuple[int, int]:
    return len(set(recorded) - set(stored)), len(stored) - len(set(stored))


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(
        tmp_path / "mosquitto", autosave_interval=30, users=PASSWORDS, acl_file=ACL
    ).start()
    yield b
    b.stop()


def test_broker_crashes_and_a_lost_disk_lose_nothing_and_double_nothing(
    tmp_path: Path, broker: Mosquitto, itinerary_file: Path
) -> None:
    ingest = Ingest(ingest_config(tmp_path, broker, itinerary_file))
    ingest.start()
    store = Store.open(f"sqlite:///{tmp_path / 'cloud.sqlite'}")
    start = datetime.now(UTC) - timedelta(hours=2)
    agents = [Agent(agent_config(tmp_path, v, broker)) for v in VEHICLES]
    feeders: list[Feeder] = []
    try:
        for agent in agents:
            agent.start()
        # The ingest's persistent session exists once it has subscribed.
        wait_for(lambda: "subscribing" in (tmp_path / "ingest.log").read_text(), timeout=20)
        feeders = [
            Feeder(a, start + timedelta(minutes=30 * i)).start() for i, a in enumerate(agents)
        ]
        wait_for(
            lambda: all(stored_times(store, gps_samples, v) for v in VEHICLES),
            timeout=30,
            what="the first samples stored",
        )
        # 1. The broker crashes with messages in flight, the ingest running.
        time.sleep(2)
        broker.kill()
        time.sleep(1)
        broker.start()
        time.sleep(4)
        # 2. The ingest is away: the broker queues for it, then crashes before saving.
        ingest.stop()
        time.sleep(4)
        broker.kill()
        broker.start()
        ingest.start()
        time.sleep(4)
        # 3. The broker's disk is lost: sessions, queues and retained messages.
        broker.kill()
        broker.wipe()
        broker.start()
        time.sleep(4)
        for feeder in feeders:
            feeder.stop()

        def all_stored() -> bool:
            return all(
                set(f.gps) <= set(stored_times(store, gps_samples, a.config.vehicle))
                and set(f.energy) <= set(stored_times(store, energy_samples, a.config.vehicle))
                for a, f in zip(agents, feeders, strict=True)
            )

        wait_for(all_stored, timeout=120, what="every sample the agents read stored")
        for agent, feeder in zip(agents, feeders, strict=True):
            vehicle = agent.config.vehicle
            gps = lost_and_doubled(feeder.gps, stored_times(store, gps_samples, vehicle))
            energy = lost_and_doubled(feeder.energy, stored_times(store, energy_samples, vehicle))
            assert gps == (0, 0), f"{vehicle} gps: (lost, doubled) of {len(feeder.gps)}"
            assert energy == (0, 0), f"{vehicle} energy: (lost, doubled)"
            assert len(feeder.gps) > 200
        # Everything read is confirmed: the outboxes let go of every sample.
        wait_for(
            lambda: all(a.outbox_depth <= 2 for a in agents),
            timeout=30,
            what="the outboxes emptied by the ingest's confirmations",
        )
        resent = sum(a.counters.get("link.sent_again") for a in agents)
        assert resent > 0, "the crashes lost messages the agents then sent again"
    finally:
        for feeder in feeders:
            if feeder._thread.is_alive():
                feeder.stop()
        for agent in agents:
            agent.stop()
        ingest.stop()
        store.close()
    for agent in agents:
        outbox = Outbox(agent.config.state_dir / "outbox.sqlite", agent.config.vehicle)
        try:
            held = outbox.stored_samples()
        finally:
            outbox.close()
        assert "gps" not in held
        assert "energy" not in held


def test_a_bus_reads_only_its_own_confirmation_and_cannot_write_one(
    tmp_path: Path, broker: Mosquitto
) -> None:
    """The deployed ACL: the ingest writes every bus's confirmation; a bus reads its own
    only, and writes none (not even its own)."""
    received: dict[str, list[bytes]] = {v: [] for v in VEHICLES}

    def client(user: str) -> mqtt.Client:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"acl-{user}")
        c.username_pw_set(user, PASSWORDS[user])
        c.connect(broker.host, broker.port)
        c.loop_start()
        return c

    ingest = client(INGEST_USER)
    buses = {v: client(v) for v in VEHICLES}
    try:
        for vehicle, bus in buses.items():
            bus.on_message = lambda c, u, m, v=vehicle: received[v].append(bytes(m.payload))
            # Each bus tries to read both confirmations; the broker gives it its own only.
            for other in VEHICLES:
                bus.subscribe(confirmation_topic(other), qos=1)
        time.sleep(0.5)
        # A bus forging a confirmation (its own or another's) is ignored by the broker.
        for bus in buses.values():
            for other in VEHICLES:
                bus.publish(confirmation_topic(other), b"forged", qos=1).wait_for_publish(5)
        for vehicle in VEHICLES:
            info = ingest.publish(confirmation_topic(vehicle), vehicle.encode(), qos=1)
            info.wait_for_publish(5)
        wait_for(lambda: all(received[v] for v in VEHICLES), timeout=10, what="confirmations")
        time.sleep(0.5)
        assert received == {v: [v.encode()] for v in VEHICLES}
    finally:
        for c in [ingest, *buses.values()]:
            c.disconnect()
            c.loop_stop()


def test_an_agent_killed_while_offline_loses_and_doubles_nothing_it_kept(
    tmp_path: Path, mosquitto: Mosquitto, itinerary: Itinerary
) -> None:
    """A real agent process reading a simulated GPS, killed with SIGKILL while the broker
    is away and started again: what its outbox held (sent and unconfirmed, or never
    sent) is stored once, beside what was stored before."""
    vehicle = "caux-01"
    state_dir = tmp_path / "agent"
    config = tmp_path / "agent.toml"
    log = tmp_path / "agent.log"
    store = Store.open(f"sqlite:///{tmp_path / 'cloud.sqlite'}")
    store.load_fleet(itinerary)
    route = DriveRoute([Waypoint("a", 49.6175, 0.7539), Waypoint("b", 49.6558, 0.5911)])
    sim = GpsSimulator(route, ScaledClock(datetime.now(UTC)), rate_hz=10, route_offset_s=20)
    sim.start()
    try:
        config.write_text(
            f'vehicle = "{vehicle}"\nstate_dir = "{state_dir}"\nstatus_interval_s = 2\n'
            f'[broker]\nurl = "{mosquitto.url}"\n'
            f'[gps]\nport = "{sim.path}"\nrate_hz = 10\nkeep_every_s = 0\n'
            "[outbox]\nconfirm_timeout_s = 3\nconfirm_timeout_max_s = 6\n"
        )

        def stored() -> list[datetime]:
            return stored_times(store, gps_samples, vehicle)

        with running_ingest(store, mosquitto.url, "ingest-agent-killed"):
            with log.open("ab") as out:
                agent = subprocess.Popen(
                    [MEDICOBUS, "agent", "--config", str(config)], stdout=out, stderr=out
                )
            wait_for(lambda: len(stored()) >= 30, what="live fixes stored")
            mosquitto.stop()
            written = len(sim.truth)
            # 6 s of fixes offline: on a loaded machine the agent reads and commits late.
            wait_for(lambda: len(sim.truth) >= written + 60, what="6 s of fixes offline")
            agent.send_signal(signal.SIGKILL)
            agent.wait()
            outbox = Outbox(state_dir / "outbox.sqlite", vehicle)
            try:
                kept = {s.t for s in outbox.stored_samples().get("gps", [])}
            finally:
                outbox.close()
            assert len(kept - set(stored())) >= 10, "the outbox held fixes not yet stored"
            before = set(stored())
            mosquitto.start()
            with log.open("ab") as out:
                agent = subprocess.Popen(
                    [MEDICOBUS, "agent", "--config", str(config)], stdout=out, stderr=out
                )
            try:
                wait_for(
                    lambda: (kept | before) <= set(stored()),
                    timeout=60,
                    what=f"every fix the killed agent kept stored (see {log})",
                )
            finally:
                agent.send_signal(signal.SIGTERM)
                assert agent.wait(timeout=30) == 0, log.read_text()
        times = stored()
        lost = len((kept | before) - set(times))
        doubled = len(times) - len(set(times))
        assert (lost, doubled) == (0, 0)
        assert "Traceback" not in log.read_text()
    finally:
        sim.stop()
        store.close()


def test_batches_evicted_from_a_full_outbox_do_not_hold_the_confirmation_back(
    tmp_path: Path, mosquitto: Mosquitto, itinerary: Itinerary
) -> None:
    """The ingest is away and the outbox fills: the oldest batches, sent and unconfirmed,
    are given up. Their seqs never arrive, yet once the ingest is back everything the
    outbox kept is stored once and confirmed, from the floor the bus reports."""
    vehicle = "vexin-01"
    store = Store.open(f"sqlite:///{tmp_path / 'cloud.sqlite'}")
    store.load_fleet(itinerary)
    agent = Agent(
        AgentConfig(
            vehicle=vehicle,
            state_dir=tmp_path / "agent",
            status_interval_s=2,
            broker=BrokerConfig(url=mosquitto.url),
            outbox=OutboxConfig(max_bytes=64 * 1024, confirm_timeout_s=2, confirm_timeout_max_s=4),
        )
    )
    start = datetime.now(UTC) - timedelta(hours=1)
    recorded = [start + timedelta(seconds=i) for i in range(2000)]
    try:
        agent.start()
        wait_for(lambda: agent.connected, what="the agent connected")
        for i, t in enumerate(recorded):
            agent.record(GpsSample(t=t, lat=49.2 + i * 1e-6, lon=1.6, fix_mode=3))
            if i % 100 == 99:
                time.sleep(0.3)  # a few commits: batches formed, sent, then evicted
        wait_for(lambda: agent.counters.get("outbox.evicted.gps") > 0, what="the outbox giving up")
        with running_ingest(store, mosquitto.url, "ingest-after-eviction"):
            wait_for(
                lambda: agent.outbox_depth <= 2,
                timeout=60,
                what="everything the outbox kept confirmed",
            )
        evicted = agent.counters.get("outbox.evicted.gps")
    finally:
        agent.stop()
        stored = stored_times(store, gps_samples, vehicle)
        store.close()
    assert len(stored) == len(set(stored)), "a sample stored twice"
    assert set(stored) <= set(recorded)
    assert len(stored) == len(recorded) - evicted
    assert 0 < evicted < len(recorded)
