"""Fixes along a meridian, where the great-circle distance is R × Δlatitude exactly."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from ingest.geo import EARTH_RADIUS_M
from protocol.models import GpsSample

T0 = datetime(2026, 1, 6, 8, 0, tzinfo=UTC)  # a Tuesday, winter: Paris is UTC+1
LON = 1.0


def lat_after(metres: float, start_lat: float = 49.0) -> float:
    return start_lat + math.degrees(metres / EARTH_RADIUS_M)


def fix(
    t: datetime,
    lat: float,
    lon: float = LON,
    *,
    speed: float | None = None,
    fix_mode: int = 3,
    quality: int = 1,
) -> GpsSample:
    return GpsSample.model_validate(
        {
            "t": t,
            "lat": lat,
            "lon": lon,
            "speed_mps": speed,
            "fix_mode": fix_mode,
            "quality": quality,
        }
    )


def meridian_track(
    count: int, step_m: float, every: timedelta, *, start: datetime = T0, start_lat: float = 49.0
) -> list[GpsSample]:
    """``count`` fixes ``step_m`` apart going north, one every ``every``."""
    speed = step_m / every.total_seconds()
    return [
        fix(start + i * every, lat_after(i * step_m, start_lat), speed=speed) for i in range(count)
    ]
