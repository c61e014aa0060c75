"""One agent with its three devices — GPS (NMEA), battery monitor (VE.Direct) and fridge
sensors (Modbus RTU) — each a simulator on a pseudo-terminal, publishing to a real
Mosquitto. Corrupt input on each port is counted and reported, and the other devices
carry on."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_agent.agent import Agent
from firmware_config.agent import AgentConfig, BrokerConfig, GpsPortConfig, OutboxConfig
from firmware_config.fridge import FridgePortConfig
from firmware_config.vedirect import VeDirectPortConfig
from protocol.clock import ScaledClock
from protocol.models import EnergySample, EventSample, FridgeSample, GpsSample, StatusSample
from simulators.fridge_device import FridgeSensorSimulator
from simulators.gps_device import GpsSimulator
from simulators.route import DriveRoute, Waypoint
from simulators.vedirect_device import AuxiliaryPowerSystem, Bmv712Simulator
from tests.edge_agent.mqtt_collector import BatchCollector
from tests.support.mosquitto import Mosquitto
from tests.support.wait import wait_for


class Bus:
    def __init__(self, tmp_path: Path, broker: Mosquitto) -> None:
        start = datetime.now(UTC)
        clock = ScaledClock(start)
        route = DriveRoute([Waypoint("a", 49.24, 1.63), Waypoint("b", 49.28, 1.77)])
        self.gps = GpsSimulator(route, clock, rate_hz=2.0)
        self.bmv = Bmv712Simulator(AuxiliaryPowerSystem(start, soc=0.62), clock, seed=3)
        self.fridge = FridgeSensorSimulator(clock, seed=5)
        self.gps.start()
        self.bmv.start()
        self.fridge.start()
        self.collector = BatchCollector(broker.host, broker.port, "vexin-01", "watcher").start()
        assert self.collector.connected.wait(10)
        self.agent = Agent(
            AgentConfig(
                vehicle="vexin-01",
                state_dir=tmp_path / "agent",
                batch_window_s=1.0,
                status_interval_s=1.0,
                outbox=OutboxConfig(commit_interval_s=1.0),
                broker=BrokerConfig(url=broker.url),
                gps=GpsPortConfig(port=self.gps.path),
                vedirect=[VeDirectPortConfig(port=self.bmv.path, device="bmv")],
                fridge=FridgePortConfig.model_validate(
                    {
                        "port": self.fridge.path,
                        "sensors": [{"profile": "sht20-xy-md02"}, {"profile": "rs485-io-door"}],
                        "poll_interval_s": 1.0,
                        "response_timeout_s": 0.2,
                        "retries": 1,
                        "retry_backoff_s": 0.05,
                        "silent_after_s": 2.0,
                    }
                ),
            )
        )
        self.agent.start()

    def samples(self, kind: type) -> list[object]:
        return [
            s
            for d in list(self.collector.deliveries)
            for s in d.batch.samples
            if isinstance(s, kind)
        ]

    def counters(self) -> dict[str, int]:
        statuses = self.samples(StatusSample)
        return dict(statuses[-1].counters) if statuses else {}  # type: ignore[attr-defined]

    def close(self) -> None:
        self.agent.stop()
        self.collector.stop()
        self.fridge.stop()
        self.bmv.stop()
        self.gps.stop()


@pytest.fixture
def bus(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Bus]:
    b = Bus(tmp_path, mosquitto)
    yield b
    b.close()


def test_three_devices_publish_and_survive_corrupt_input(bus: Bus) -> None:
    wait_for(
        lambda: bus.samples(GpsSample) and bus.samples(EnergySample) and bus.samples(FridgeSample),
        what="gps, energy and fridge samples from the agent",
    )
    energy = bus.samples(EnergySample)[-1]
    assert isinstance(energy, EnergySample)
    assert energy.soc_pct == pytest.approx(62.0, abs=1.0)
    fridge = bus.samples(FridgeSample)[-1]
    assert isinstance(fridge, FridgeSample)
    assert fridge.temp_c is not None
    assert abs(fridge.temp_c - bus.fridge.state().temp_c) < 1.0

    # Corrupt every port: NMEA with a bad checksum, a half line and noise; VE.Direct
    # noise and a block with a wrong checksum; the Modbus sensors stop answering.
    bus.gps.port.write(b"$GPGGA,120000.00,4914.4,N,00137.9,E,1,08,0.9,10.0,M,,M,,*00\r\n")
    bus.gps.port.write(b"$GPRMC,1200" + os.urandom(64) + b"\r\n")
    bus.bmv.port.write(os.urandom(200) + b"\r\nPID\t0xA381\r\nV\t12800\r\nChecksum\t\x00")
    bus.fridge.silence()

    def reported() -> dict[str, int] | None:
        c = bus.counters()
        ok = (
            c.get("gps.nmea_bad_checksum", 0) >= 1
            and c.get("vedirect_bmv.vedirect_garbage_bytes", 0) >= 1
            and c.get("fridge.timeouts", 0) >= 1
        )
        return c if ok else None

    counters = wait_for(reported, timeout=30, what="corrupt input counted in the status")
    spoilt = ("nmea_garbage", "nmea_truncated", "nmea_malformed", "nmea_bad_checksum")
    assert sum(counters.get(f"gps.{name}", 0) for name in spoilt) >= 2, counters
    wait_for(
        lambda: any(
            e.kind == "fridge_sensor_silent"
            for e in bus.samples(EventSample)  # type: ignore[attr-defined]
        ),
        what="the silent fridge sensor reported as an event",
    )
    # The other devices are unaffected: fresh GPS and energy samples keep coming.
    gps_before, energy_before = len(bus.samples(GpsSample)), len(bus.samples(EnergySample))
    wait_for(
        lambda: (
            len(bus.samples(GpsSample)) > gps_before + 2
            and len(bus.samples(EnergySample)) > energy_before + 1
        ),
        what="GPS and energy samples after the corruption",
    )

    bus.fridge.answer()
    wait_for(
        lambda: any(
            e.kind == "fridge_sensor_answering"
            for e in bus.samples(EventSample)  # type: ignore[attr-defined]
        ),
        what="the fridge sensor answering again",
    )


def test_engine_on_and_off_from_the_starter_battery(bus: Bus) -> None:
    def kinds() -> list[str]:
        return [e.kind for e in bus.samples(EventSample)]  # type: ignore[attr-defined]

    # Parked: the starter battery rests near 12.6 V.
    wait_for(lambda: "engine_off" in kinds(), what="engine_off while parked")
    bus.bmv.system.set_driving(True)  # the alternator charges it
    wait_for(lambda: "engine_on" in kinds(), what="engine_on once driving")
    energy = [e for e in bus.samples(EnergySample) if isinstance(e, EnergySample)]
    assert any(e.starter_voltage_v and e.starter_voltage_v > 13.3 for e in energy)
    assert kinds().count("engine_off") == 1
