"""Figures at the resolution they are known to, for the responses people and programs read.

Sums and unit conversions leave float noise (``85.10000000000001`` %, ``2.0572020960353927``
km) that claims a precision no sensor has. Response models annotate each figure with its
kind below, and the figure is rounded to that kind's resolution when the model is built:
one rule for every endpoint. Non-finite values pass unchanged (a model refuses them where
it must).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Final

from pydantic import AfterValidator


def to_digits(digits: int) -> Callable[[float], float]:
    def rounded(value: float) -> float:
        return round(value, digits) if math.isfinite(value) else value

    return rounded


def rounded(digits: int) -> AfterValidator:
    """A pydantic validator that rounds a float to ``digits`` decimals."""
    return AfterValidator(to_digits(digits))


# Each kind's resolution, in decimals of its unit.
RESOLUTION: Final = {
    "coordinate_deg": 6,  # about 0.1 m
    "heading_deg": 1,
    "metres": 1,
    "kilometres": 3,  # a metre
    "speed_mps": 2,
    "speed_kmh": 1,
    "percent": 1,
    "volts": 2,
    "celsius": 1,  # fridge probes read to 0.1 °C
    "minutes": 1,
    "hours": 2,
    "energy": 3,  # litres or kWh
    "kgco2e": 4,  # a tenth of a gram: a small bus's per-km figures stay readable
    "ratio": 3,
}

Coordinate = Annotated[float, rounded(RESOLUTION["coordinate_deg"])]
HeadingDeg = Annotated[float, rounded(RESOLUTION["heading_deg"])]
Metres = Annotated[float, rounded(RESOLUTION["metres"])]
Kilometres = Annotated[float, rounded(RESOLUTION["kilometres"])]
SpeedMps = Annotated[float, rounded(RESOLUTION["speed_mps"])]
SpeedKmh = Annotated[float, rounded(RESOLUTION["speed_kmh"])]
Percent = Annotated[float, rounded(RESOLUTION["percent"])]
Volts = Annotated[float, rounded(RESOLUTION["volts"])]
Celsius = Annotated[float, rounded(RESOLUTION["celsius"])]
Minutes = Annotated[float, rounded(RESOLUTION["minutes"])]
Hours = Annotated[float, rounded(RESOLUTION["hours"])]
Energy = Annotated[float, rounded(RESOLUTION["energy"])]
KgCo2e = Annotated[float, rounded(RESOLUTION["kgco2e"])]
Ratio = Annotated[float, rounded(RESOLUTION["ratio"])]
