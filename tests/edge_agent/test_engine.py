from __future__ import annotations

import pytest

from edge_agent.engine import EngineWatch
from firmware_config.vedirect import VeDirectPortConfig


def test_engine_state_follows_the_starter_battery_with_hysteresis() -> None:
    watch = EngineWatch(running_above_v=13.3, stopped_below_v=12.9)
    readings = [13.0, 12.6, 12.7, 13.1, 14.2, 14.1, 13.0, 13.2, 12.8, 12.6, 13.4]
    changes = [watch.feed(v) for v in readings]
    assert changes == [
        None,  # inside the band: unknown still
        "engine_off",
        None,
        None,
        "engine_on",
        None,
        None,  # a dip inside the band is not a stop
        None,
        "engine_off",
        None,
        "engine_on",
    ]


def test_thresholds_must_leave_a_band() -> None:
    with pytest.raises(ValueError, match="below"):
        EngineWatch(running_above_v=13.0, stopped_below_v=13.0)
    with pytest.raises(ValueError, match="hysteresis"):
        VeDirectPortConfig(
            port="/dev/ttyUSB0",
            device="bmv",
            engine_running_above_v=12.5,
            engine_stopped_below_v=13,
        )
    assert VeDirectPortConfig(port="x", device="bmv", engine_running_above_v=None)
