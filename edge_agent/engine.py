"""Whether the engine runs, read from the starter battery's voltage (pure).

Nothing on the bus reports the ignition, but the BMV's auxiliary input watches the
starter battery: the alternator holds it well above a resting battery's voltage. The
cloud turns the resulting on/off events into idling time at stops.
"""

from __future__ import annotations

from typing import Literal

EngineChange = Literal["engine_on", "engine_off"]


class EngineWatch:
    """Reports a change when the voltage crosses the upper threshold going up or the
    lower one going down; between the two (hysteresis) the state holds. The first
    reading outside the band reports the initial state."""

    def __init__(self, running_above_v: float, stopped_below_v: float) -> None:
        if stopped_below_v >= running_above_v:
            raise ValueError("stopped_below_v must be below running_above_v")
        self._on_v = running_above_v
        self._off_v = stopped_below_v
        self.running: bool | None = None

    def feed(self, starter_voltage_v: float) -> EngineChange | None:
        if starter_voltage_v > self._on_v and self.running is not True:
            self.running = True
            return "engine_on"
        if starter_voltage_v < self._off_v and self.running is not False:
            self.running = False
            return "engine_off"
        return None
