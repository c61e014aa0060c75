"""Great-circle distance on a spherical Earth.

Hand-written rather than taken from a library: one formula, and metre accuracy over the
few kilometres between two GPS fixes is all the distance count needs (the spherical model
errs by under 0.5 %, far less than fix noise).
"""

from __future__ import annotations

import math
from typing import Final

# IUGG mean Earth radius.
EARTH_RADIUS_M: Final = 6_371_008.8


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Distance in metres between two WGS84 points, in degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))
