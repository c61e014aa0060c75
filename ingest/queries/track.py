"""A vehicle's day on the map: its fixes, simplified for display, and the stays the
punctuality detector found, with the visit each one made."""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass
from datetime import date, datetime
from itertools import pairwise
from statistics import median
from typing import Final

import sqlalchemy as sa
from simplification.cutil import simplify_coords_idx

from ingest.local_days import LocalDay
from ingest.punctuality.classification import stays_from_events
from ingest.punctuality.storage import PunctualityStore
from ingest.store import Store
from ingest.tables.intake import gps_samples, stops
from ingest.tables.punctuality import visits

# Points closer than this to the simplified line are dropped: far below what a map at
# street level shows, and it divides the points of a day's drive by five to ten.
DEFAULT_TOLERANCE_M: Final = 5.0
EARTH_RADIUS_M: Final = 6_371_008.8
# Fixes without a position the receiver stood by (no fix) are not drawn.
MIN_FIX_MODE: Final = 2


@dataclass(frozen=True)
class TrackPoint:
    t: datetime
    lat: float
    lon: float
    speed_mps: float | None


@dataclass(frozen=True)
class TrackStay:
    stop_id: str | None
    stop_name: str | None
    arrival: datetime
    departure: datetime | None
    lat: float
    lon: float
    visit_id: str | None


@dataclass(frozen=True)
class DayTrack:
    vehicle: str
    day: date
    points_raw: int
    points: list[TrackPoint]
    stays: list[TrackStay]


def simplified(points: list[TrackPoint], keep: set[int], tolerance_m: float) -> list[int]:
    """Indices of ``points`` that draw the line within ``tolerance_m`` (Douglas–Peucker),
    always keeping the first, the last and those in ``keep``."""
    if len(points) <= 2:
        return list(range(len(points)))
    # Metres on a plane tangent at the track's mean latitude: exact enough over a
    # département, and what the tolerance is written in.
    lat0 = math.radians(sum(p.lat for p in points) / len(points))
    scale_x = EARTH_RADIUS_M * math.cos(lat0) * math.pi / 180
    scale_y = EARTH_RADIUS_M * math.pi / 180
    xy = [[p.lon * scale_x, p.lat * scale_y] for p in points]
    cuts = sorted({0, len(points) - 1, *(i for i in keep if 0 <= i < len(points))})
    kept: list[int] = [0]
    for start, end in pairwise(cuts):
        if end - start < 2:
            kept.append(end)
            continue
        # A run between two kept points keeps both ends: Douglas–Peucker never drops them.
        indices = simplify_coords_idx(xy[start : end + 1], tolerance_m)
        kept.extend(start + int(i) for i in indices[1:])
    return kept


def day_track(
    store: Store,
    vehicle: str,
    day: LocalDay,
    tolerance_m: float = DEFAULT_TOLERANCE_M,
) -> DayTrack:
    g = gps_samples.c
    fixes_query = (
        sa.select(g.t, g.lat, g.lon, g.speed_mps)
        .where(
            g.vehicle == vehicle,
            g.t >= day.start,
            g.t < day.end,
            g.fix_mode >= MIN_FIX_MODE,
        )
        .order_by(g.t, g.id)
    )
    v = visits.c
    visits_query = sa.select(v.id, v.stop, v.detected_arrival).where(
        v.vehicle == vehicle, v.day == day.day, v.detected_arrival.is_not(None)
    )
    events = PunctualityStore(store).events(vehicle, day.day)
    with store.engine.connect() as conn:
        points = [TrackPoint(r[0], r[1], r[2], r[3]) for r in conn.execute(fixes_query)]
        made = {(r[1], r[2]): r[0] for r in conn.execute(visits_query)}
        stop_query = sa.select(stops.c.id, stops.c.name, stops.c.lat, stops.c.lon)
        stops_of = {r.id: r for r in conn.execute(stop_query)}
    times = [p.t for p in points]
    stays: list[TrackStay] = []
    keep: set[int] = set()
    for stay in stays_from_events(events):
        first = bisect_left(times, stay.arrival)
        last = bisect_left(times, stay.departure) if stay.departure else len(points)
        keep.update({first, last, first - 1, last - 1})
        inside = points[first:last]
        stop = stops_of.get(stay.stop)
        if inside:
            lat, lon = median(p.lat for p in inside), median(p.lon for p in inside)
        elif stop is not None:
            lat, lon = stop.lat, stop.lon
        else:
            continue
        stays.append(
            TrackStay(
                stop_id=stay.stop if stop is not None else None,
                stop_name=stop.name if stop is not None else None,
                arrival=stay.arrival,
                departure=stay.departure,
                lat=lat,
                lon=lon,
                visit_id=made.get((stay.stop, stay.arrival)),
            )
        )
    stays.sort(key=lambda s: s.arrival)
    kept = simplified(points, keep, tolerance_m)
    return DayTrack(
        vehicle=vehicle,
        day=day.day,
        points_raw=len(points),
        points=[points[i] for i in kept],
        stays=stays,
    )
