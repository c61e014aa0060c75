"""The devices of a scenario's bus, each driven by the day's plan on one shared clock:
the GPS receiver, the BMV-712 and SmartSolar MPPT on the auxiliary battery, and the
fridge's Modbus sensors."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from protocol.clock import ScaledClock
from simulators.day_plan import DayPlan, FridgeAction
from simulators.fridge_device import (
    FridgeSensorSimulator,
    FridgeState,
    FridgeThermalModel,
    ThermalParameters,
)
from simulators.gps_device import NmeaReceiverSimulator
from simulators.gps_track import ScenarioGpsTrack
from simulators.vedirect_device import (
    AuxiliaryPowerSystem,
    Bmv712Simulator,
    SmartSolarMpptSimulator,
)


class ScriptedFridgeModel(FridgeThermalModel):
    """The fridge's thermal model with its door openings and failures at given seconds
    (since the scenario's start) instead of at random."""

    def __init__(
        self,
        actions: Sequence[FridgeAction],
        params: ThermalParameters | None = None,
        *,
        seed: int = 0,
    ) -> None:
        super().__init__(params, seed=seed, random_doors=False)
        self._actions = deque(sorted(actions, key=lambda a: a.t_s))

    def advance_to(self, elapsed_s: float) -> FridgeState:
        while self._actions and self._actions[0].t_s <= elapsed_s:
            action = self._actions.popleft()
            super().advance_to(action.t_s)
            if action.kind == "open_door":
                self.open_door()
            elif action.kind == "close_door":
                self.close_door()
            elif action.kind == "fail":
                self.fail()
            else:
                self.repair()
        return super().advance_to(elapsed_s)


def fridge_model(plan: DayPlan) -> ScriptedFridgeModel:
    params = ThermalParameters(ambient_c=plan.scenario.vehicle.cabin_c, door_openings_per_hour=0)
    return ScriptedFridgeModel(plan.fridge_actions, params, seed=plan.scenario.seed)


def power_system(plan: DayPlan) -> AuxiliaryPowerSystem:
    setup = plan.scenario.vehicle
    return AuxiliaryPowerSystem(
        plan.start,
        capacity_ah=plan.battery_ah,
        soc=setup.battery_soc,
        alternator_current_a=setup.alternator_a,
        schedule=plan.power_conditions_at,
    )


@dataclass
class ScenarioDevices:
    gps: NmeaReceiverSimulator
    power: AuxiliaryPowerSystem
    bmv: Bmv712Simulator
    mppt: SmartSolarMpptSimulator
    fridge: FridgeSensorSimulator

    def start(self) -> None:
        self.fridge.start()
        self.gps.start()
        self.bmv.start()
        self.mppt.start()

    def stop(self) -> None:
        for device in (self.gps, self.bmv, self.mppt, self.fridge):
            device.stop()


def build_devices(plan: DayPlan, clock: ScaledClock) -> ScenarioDevices:
    """Every device on its own virtual port; ``clock`` should start at ``plan.start``."""
    seed = plan.scenario.seed
    power = power_system(plan)
    return ScenarioDevices(
        gps=NmeaReceiverSimulator(ScenarioGpsTrack(plan), clock, rate_hz=plan.scenario.gps.rate_hz),
        power=power,
        bmv=Bmv712Simulator(power, clock, seed=seed + 1),
        mppt=SmartSolarMpptSimulator(power, clock, seed=seed + 2),
        fridge=FridgeSensorSimulator(
            clock, seed=seed + 3, model=fridge_model(plan), origin=plan.start
        ),
    )
