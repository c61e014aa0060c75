"""GET /api/v1/vehicles/{id}/track: a day of fixes, simplified for display, with stays."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from ingest.itinerary import Itinerary
from ingest.punctuality.tracker import PunctualityTracker
from ingest.queries.track import DEFAULT_TOLERANCE_M, TrackPoint, simplified
from ingest.store import Store
from tests.ingest.punctuality.test_tracker import MONDAY, ingest, vexin_monday
from tests.support.live import running_api

PARIS = ZoneInfo("Europe/Paris")


def metres(lat0: float, a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    k = 6_371_008.8 * math.pi / 180
    return ((b[0] - a[0]) * k * math.cos(math.radians(lat0)), (b[1] - a[1]) * k)


def distance_to_segment(
    lat0: float, p: tuple[float, float], a: tuple[float, float], b: tuple[float, float]
) -> float:
    ax, ay = 0.0, 0.0
    bx, by = metres(lat0, a, b)
    px, py = metres(lat0, a, p)
    length2 = bx * bx + by * by
    u = 0.0 if length2 == 0 else max(0.0, min(1.0, (px * bx + py * by) / length2))
    return math.hypot(px - (ax + u * bx), py - (ay + u * by))


@pytest.fixture
def monday(store: Store, itinerary: Itinerary) -> Store:
    tracker = PunctualityTracker(store, itinerary)
    tracker.start(MONDAY, past_days=1)
    ingest(store, tracker, vexin_monday(itinerary))
    return store


def test_the_days_track_is_simplified_within_its_tolerance_with_its_stays(
    monday: Store,
) -> None:
    raw = [f for f in monday.gps_track("vexin-01") if f.t.astimezone(PARIS).date() == MONDAY]
    with running_api(monday, token="coord-eure-token") as api:
        response = api.get("/api/v1/vehicles/vexin-01/track", params={"date": "2026-11-16"})
        assert response.status_code == 200
        body = response.json()
    assert body["type"] == "FeatureCollection"
    line, *stays = body["features"]
    assert line["id"] == "track"
    assert line["geometry"]["type"] == "LineString"
    coords = line["geometry"]["coordinates"]
    props = line["properties"]
    assert props["vehicle"] == "vexin-01" and props["date"] == "2026-11-16"
    assert props["points_raw"] == len(raw)
    assert props["points"] == len(coords) == len(props["times"]) == len(props["speeds_kmh"])
    # A day of fixes every 10 s: most of them lie on straight lines or at rest.
    assert props["points"] < props["points_raw"] / 3
    times = [datetime.fromisoformat(t) for t in props["times"]]
    assert all(t.endswith("Z") for t in props["times"])
    assert times == sorted(times)
    assert (times[0], times[-1]) == (raw[0].t, raw[-1].t)
    # Every fix dropped lies within the tolerance of the line drawn between the points kept.
    by_time = {f.t: f for f in raw}
    kept = [raw.index(by_time[t]) for t in times]
    lat0 = sum(f.lat for f in raw) / len(raw)
    for a, b in itertools.pairwise(kept):
        for f in raw[a + 1 : b]:
            d = distance_to_segment(
                lat0, (f.lon, f.lat), (raw[a].lon, raw[a].lat), (raw[b].lon, raw[b].lat)
            )
            assert d <= DEFAULT_TOLERANCE_M + 0.5
    assert props["speeds_kmh"][0] == pytest.approx((raw[0].speed_mps or 0) * 3.6, abs=0.05)

    assert all(s["properties"]["kind"] == "stay" for s in stays)
    by_stop = [(s["properties"]["stop_id"], s["properties"]["visit_id"]) for s in stays]
    assert ("vesly", "vexin-01:2026-11-16:vesly") in by_stop
    assert ("hacqueville", "vexin-01:2026-11-16:hacqueville") in by_stop
    assert ("bezu-saint-eloi", None) in by_stop  # the lunch stop: no visit explains it
    vesly = next(s for s in stays if s["properties"]["stop_id"] == "vesly")
    assert vesly["properties"]["stop_name"] == "Vesly"
    lon, lat = vesly["geometry"]["coordinates"]
    assert distance_to_segment(lat, (lon, lat), (1.6333, 49.2411), (1.6333, 49.2411)) < 150
    # The arrival and the departure of each stay are kept on the line, so replaying the
    # track shows the bus stop where it stopped.
    for stay in stays:
        arrival = datetime.fromisoformat(stay["properties"]["arrival"])
        departure = stay["properties"]["departure"]
        end = datetime.fromisoformat(departure) if departure else times[-1]
        assert any(arrival <= t <= end for t in times), stay


def test_a_day_without_fixes_is_an_empty_line_and_today_is_the_default(monday: Store) -> None:
    with running_api(monday, token="coord-eure-token") as api:
        body = api.get("/api/v1/vehicles/vexin-01/track").json()
    line, *stays = body["features"]
    assert line["properties"]["date"] == datetime.now(UTC).astimezone(PARIS).date().isoformat()
    assert line["geometry"]["coordinates"] == [] and stays == []
    assert line["properties"]["points_raw"] == 0


def test_other_operators_vehicles_and_bad_dates_are_refused(monday: Store) -> None:
    with running_api(monday, token="fm-caux-token") as api:
        assert api.get("/api/v1/vehicles/vexin-01/track").status_code == 404
        assert api.get("/api/v1/vehicles/nope/track").status_code == 404
        assert api.get("/api/v1/vehicles/caux-01/track").status_code == 200
        for bad in ("0001-01-01", "9999-12-31", "2026-02-30", "16/11/2026", "", "\x00"):
            r = api.get("/api/v1/vehicles/caux-01/track", params={"date": bad})
            assert r.status_code == 422, (bad, r.text)
        edge = api.get("/api/v1/vehicles/caux-01/track", params={"date": "0001-01-01"})
        assert "calendar" in str(edge.json()["detail"])
        assert (
            api.get("/api/v1/vehicles/caux-01/track", params={"date": "9999-12-30"}).status_code
            == 200
        )


def test_simplification_keeps_the_ends_and_the_points_asked_for() -> None:
    t = datetime(2026, 11, 16, 8, tzinfo=UTC)
    line = [TrackPoint(t, 49.0, 1.0 + i * 1e-4, 5.0) for i in range(50)]
    assert simplified(line, set(), 5.0) == [0, 49]
    assert simplified(line, {10, 30}, 5.0) == [0, 10, 30, 49]
    assert simplified(line[:2], set(), 5.0) == [0, 1]
    assert simplified([], set(), 5.0) == []
