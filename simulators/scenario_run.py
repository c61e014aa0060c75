"""``medicobus sim run``: a scenario's bus, devices and edge agent against a broker.

One :class:`ScaledClock` starts at the scenario's start and drives every device and the
agent, so their timestamps agree. The agent reaches the broker through a
:class:`MobileLink`, which the scenario's network losses cut. What happens is told as it
happens, in the itinerary's local time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from edge_agent.agent import Agent
from firmware_config.agent import AgentConfig, BrokerConfig, GpsPortConfig
from firmware_config.fridge import FridgePortConfig, FridgeSensorConfig
from firmware_config.vedirect import VeDirectPortConfig
from protocol.clock import ScaledClock
from simulators.day_plan import DayPlan
from simulators.link import MobileLink
from simulators.scenario_devices import ScenarioDevices, build_devices

# The fridge is polled every few simulated seconds, but not faster than the line allows.
FRIDGE_POLL_SIM_S = 10.0
MIN_FRIDGE_POLL_S = 0.5
_TICK_S = 0.2


def agent_config(
    plan: DayPlan, devices: ScenarioDevices, broker_url: str, state_dir: Path, speed: float
) -> AgentConfig:
    """The agent of the scenario's bus, with its three kinds of device ports."""
    vehicle = plan.vehicle.id
    return AgentConfig(
        vehicle=vehicle,
        state_dir=state_dir,
        broker=BrokerConfig(url=broker_url, client_id=f"medicobus-sim-{vehicle}"),
        gps=GpsPortConfig(port=devices.gps.path, rate_hz=plan.scenario.gps.rate_hz),
        vedirect=[
            VeDirectPortConfig(port=devices.bmv.path, device="bmv"),
            VeDirectPortConfig(port=devices.mppt.path, device="mppt"),
        ],
        fridge=FridgePortConfig(
            port=devices.fridge.path,
            sensors=[
                FridgeSensorConfig(profile="sht20-xy-md02"),
                FridgeSensorConfig(profile="rs485-io-door"),
            ],
            poll_interval_s=max(MIN_FRIDGE_POLL_S, FRIDGE_POLL_SIM_S / speed),
        ),
    )


class ScenarioRun:
    def __init__(
        self,
        plan: DayPlan,
        broker_url: str,
        *,
        speed: float,
        state_dir: Path,
        tell: Callable[[str], None],
        until: datetime | None = None,
    ) -> None:
        self.plan = plan
        self._broker_url = broker_url
        self._speed = speed
        self._state_dir = state_dir
        self._tell = tell
        self.until = min(until or plan.end, plan.end)
        self.clock = ScaledClock(plan.start, speed)
        self.devices = build_devices(plan, self.clock)
        self.link = MobileLink(broker_url)
        self.agent = Agent(
            agent_config(plan, self.devices, self.link.url, state_dir, speed), clock=self.clock
        )
        self._stop = threading.Event()
        self._started: list[Callable[[], None]] = []
        self._narrator = threading.Thread(target=self._narrate, name="scenario", daemon=True)

    def local(self, t: datetime) -> str:
        return f"{t.astimezone(self.plan.itinerary.zone):%H:%M:%S}"

    def start(self) -> None:
        plan, devices = self.plan, self.devices
        self._tell(
            f"{self.local(plan.start)} scenario {plan.scenario.name}: {plan.vehicle.id} on "
            f"{plan.scenario.day.date:%A %d %B %Y}, x{self._speed:g}, "
            f"until {self.local(self.until)}"
        )
        self._tell(
            f"{self.local(plan.start)} devices: GPS {devices.gps.path}, BMV {devices.bmv.path}, "
            f"MPPT {devices.mppt.path}, fridge (Modbus RTU) {devices.fridge.path}"
        )
        self._tell(
            f"{self.local(plan.start)} agent: broker {self._broker_url} through the mobile "
            f"link {self.link.url}; state in {self._state_dir}"
        )
        # Whatever was set up is stopped again, even if a later part fails to start.
        self._started.append(self.devices.stop)
        self.devices.start()
        self._started.append(self.link.stop)
        self.link.start()
        self.agent.start()
        self._started.append(self.agent.stop)
        self._narrator.start()

    def _narrate(self) -> None:
        for happening in self.plan.happenings:
            when = self.plan.time_of(happening.t_s)
            if when > self.until or not self._sleep_until(when):
                return
            if happening.action == "network_down":
                self.link.cut()
            elif happening.action == "network_up":
                self.link.restore()
            self._tell(f"{self.local(when)} {happening.text}")

    def _sleep_until(self, when: datetime) -> bool:
        """Wait for simulated time ``when``; False if the run was stopped first."""
        while not self._stop.is_set():
            left = (when - self.clock.now()).total_seconds() / self._speed
            if left <= 0:
                return True
            self._stop.wait(min(left, _TICK_S))
        return False

    def wait(self, interrupted: threading.Event) -> bool:
        """Block until the run reaches its end (True) or ``interrupted`` is set (False)."""
        while not interrupted.is_set():
            left = (self.until - self.clock.now()).total_seconds() / self._speed
            if left <= 0:
                return True
            interrupted.wait(min(left, _TICK_S))
        return False

    def stop(self) -> None:
        self._stop.set()
        if self._narrator.is_alive():
            self._narrator.join(timeout=2.0)
        while self._started:
            self._started.pop()()
        now = min(self.clock.now(), self.until)
        counters = self.agent.gps_counters.snapshot()
        battery = self.devices.power.state
        fridge = self.devices.fridge.state()
        self._tell(
            f"{self.local(now)} stopped: GPS {counters.get('gps_fixes', 0)} fixes, "
            f"{counters.get('gps_no_fix', 0)} without fix; battery "
            f"{battery.soc * 100:.1f} %; fridge {fridge.temp_c:.1f} °C; "
            f"link cut {self.link.cuts} time(s)"
        )
