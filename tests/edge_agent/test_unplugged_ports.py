"""A serial adapter unplugged and plugged back in: the reader reopens the port, whatever
the device, and samples resume. The by-id link udev keeps for a real adapter is a
symlink here, to a simulator's pseudo-terminal."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from edge_agent.counters import DeviceCounters
from edge_agent.gps_reader import GpsReader
from edge_agent.vedirect_reader import VeDirectReader
from firmware_config.agent import GpsPortConfig
from firmware_config.vedirect import VeDirectPortConfig
from protocol.clock import ScaledClock
from protocol.models import EnergySample, GpsSample
from simulators.gps_device import GpsSimulator
from simulators.route import DriveRoute, Waypoint
from simulators.vedirect_device import AuxiliaryPowerSystem, Bmv712Simulator
from tests.support.wait import wait_for

ROUTE = DriveRoute([Waypoint("a", 49.24, 1.63), Waypoint("b", 49.28, 1.77)])


def test_gps_port_unplugged_and_back(tmp_path: Path) -> None:
    clock = ScaledClock(datetime.now(UTC))
    link = tmp_path / "usb-u-blox_GNSS_receiver-if00"
    fixes: list[GpsSample] = []
    counters = DeviceCounters()
    first = GpsSimulator(ROUTE, clock, rate_hz=5.0)
    first.start()
    link.symlink_to(first.path)
    reader = GpsReader(GpsPortConfig(port=str(link)), fixes.append, counters)
    reader.start()
    try:
        wait_for(lambda: len(fixes) >= 3, what="fixes from the first port")
        first.stop()
        link.unlink()
        wait_for(lambda: counters.get("port_errors") >= 1, what="the lost port counted")
        second = GpsSimulator(ROUTE, clock, rate_hz=5.0)
        second.start()
        link.symlink_to(second.path)
        n = len(fixes)
        wait_for(lambda: len(fixes) >= n + 3, timeout=30, what="fixes from the reopened port")
        second.stop()
    finally:
        reader.stop()


def test_vedirect_port_unplugged_and_back(tmp_path: Path) -> None:
    clock = ScaledClock(datetime.now(UTC), speed=5.0)
    link = tmp_path / "usb-VictronEnergy_VE_Direct_cable-if00"
    samples: list[EnergySample] = []
    counters = DeviceCounters()
    first = Bmv712Simulator(AuxiliaryPowerSystem(clock.now()), clock)
    first.start()
    link.symlink_to(first.path)
    reader = VeDirectReader(
        VeDirectPortConfig(port=str(link), device="bmv"), samples.append, counters, clock
    )
    reader.start()
    try:
        wait_for(lambda: len(samples) >= 2, what="blocks from the first port")
        first.stop()
        link.unlink()
        wait_for(lambda: counters.get("port_errors") >= 1, what="the lost port counted")
        second = Bmv712Simulator(AuxiliaryPowerSystem(clock.now(), soc=0.4), clock)
        second.start()
        link.symlink_to(second.path)
        wait_for(
            lambda: any(s.soc_pct is not None and s.soc_pct < 45 for s in samples),
            timeout=30,
            what="blocks from the reopened port",
        )
        second.stop()
    finally:
        reader.stop()
