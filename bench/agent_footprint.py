"""The agent's footprint on a small board: CPU and memory with its three devices busy.

One agent process (``medicobus agent``) reads a GPS at 10 Hz, a VE.Direct battery
monitor at 1 Hz and the fridge's Modbus sensors every 5 s — simulators on
pseudo-terminals in this process — and publishes to a real Mosquitto for ``--seconds``.
The baseline, measured in the same run, is a bare Python process that opens the same
GPS and VE.Direct ports with pyserial and discards what it reads. Figures come from
``/proc`` (user + system CPU time, peak resident set ``VmHWM``).

Last line: ``cpu_pct=… rss_mb=… baseline_cpu_pct=… baseline_rss_mb=… cpu_ratio=…``
(target: ≤ 2 % of one core and ≤ 60 MB).

Run: ``.venv/bin/python -m bench.agent_footprint [--seconds 60]``
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.procfs import cpu_seconds, peak_rss_mb
from protocol.clock import ScaledClock
from simulators.fridge_device import FridgeSensorSimulator
from simulators.gps_device import GpsSimulator
from simulators.route import DriveRoute, Waypoint
from simulators.vedirect_device import AuxiliaryPowerSystem, Bmv712Simulator
from tests.support.mosquitto import Mosquitto

BARE_READER = """
import sys, time, serial
ports = [serial.Serial(p, b, timeout=0.05) for p, b in ((sys.argv[1], 9600), (sys.argv[2], 19200))]
while True:
    for port in ports:
        port.read(max(1, port.in_waiting))
"""


def measure(proc: subprocess.Popen[bytes], warmup: float, seconds: float) -> tuple[float, float]:
    time.sleep(warmup)
    if proc.poll() is not None:
        raise SystemExit(f"process exited early with {proc.returncode}")
    start_cpu, start = cpu_seconds(proc.pid), time.monotonic()
    time.sleep(seconds)
    cpu = (cpu_seconds(proc.pid) - start_cpu) / (time.monotonic() - start) * 100
    return cpu, peak_rss_mb(proc.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    medicobus = str(Path(sys.executable).parent / "medicobus")
    with tempfile.TemporaryDirectory(prefix="medicobus-bench-") as tmp:
        broker = Mosquitto(Path(tmp) / "mosquitto").start()
        clock = ScaledClock(datetime.now(UTC))
        route = DriveRoute([Waypoint("a", 49.24, 1.63), Waypoint("b", 49.28, 1.77)])
        gps = GpsSimulator(route, clock, rate_hz=10.0)
        bmv = Bmv712Simulator(AuxiliaryPowerSystem(clock.now()), clock)
        fridge = FridgeSensorSimulator(clock)
        for device in (gps, bmv, fridge):
            device.start()
        config = Path(tmp) / "agent.toml"
        config.write_text(
            f'vehicle = "vexin-01"\nstate_dir = "{tmp}/agent"\nlog_level = "WARNING"\n'
            f'[broker]\nurl = "{broker.url}"\n'
            f'[gps]\nport = "{gps.path}"\nrate_hz = 10\n'
            f'[[vedirect]]\nport = "{bmv.path}"\ndevice = "bmv"\n'
            f'[fridge]\nport = "{fridge.path}"\npoll_interval_s = 5\n'
            'sensors = [{ profile = "sht20-xy-md02" }, { profile = "rs485-io-door" }]\n'
        )
        try:
            agent = subprocess.Popen([medicobus, "agent", "--config", str(config)])
            try:
                cpu, rss = measure(agent, 5.0, args.seconds)
            finally:
                agent.terminate()
                agent.wait(timeout=30)
            bare = subprocess.Popen([sys.executable, "-c", BARE_READER, gps.path, bmv.path])
            try:
                base_cpu, base_rss = measure(bare, 2.0, min(args.seconds, 20.0))
            finally:
                bare.terminate()
                bare.wait(timeout=10)
        finally:
            for device in (gps, bmv, fridge):
                device.stop()
            broker.stop()
    print(
        f"agent: {cpu:.2f} % CPU, {rss:.1f} MB peak RSS; "
        f"bare reader: {base_cpu:.2f} %, {base_rss:.1f} MB"
    )
    print(
        f"cpu_pct={cpu:.2f} rss_mb={rss:.1f} baseline_cpu_pct={base_cpu:.2f} "
        f"baseline_rss_mb={base_rss:.1f} cpu_ratio={cpu / max(base_cpu, 0.01):.1f}"
    )


if __name__ == "__main__":
    main()
