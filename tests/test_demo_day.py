"""``medicobus demo`` follows today's timetable: the day so far is sent first through the
agents, so the morning's visits are detected and confirmable, and the buses are where the
timetable puts them now. Run with a fixed "now" (a Monday, 14:30 in Paris) on a real
Mosquitto, simulated devices on pseudo-terminals, the agents, the ingest and the API."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import httpx

from ingest.itinerary import Itinerary
from ingest.punctuality.storage import PunctualityStore
from medicobus.demo import day_so_far, running_demo, todays_plan, with_timetable_of
from protocol.clock import ScaledClock
from simulators.geo import haversine_m
from tests.support.live import TEST_USERS, serving
from tests.support.mosquitto import Mosquitto
from tests.support.wait import wait_for

MONDAY = date(2026, 11, 16)
NOW = datetime(2026, 11, 16, 13, 30, tzinfo=UTC)  # 14:30 in Paris
VESLY = "vexin-01:2026-11-16:vesly"  # 09:00–12:00 (the crew leaves after lunch): over
TERRES = "caux-01:2026-11-16:terres-de-caux"  # 08:30–12:00: over
HACQUEVILLE = "vexin-01:2026-11-16:hacqueville"  # 14:00–17:00: the bus is there


def test_the_demo_shows_the_morning_detected_and_the_buses_where_the_timetable_says(
    tmp_path: Path, mosquitto: Mosquitto, itinerary: Itinerary
) -> None:
    clock = ScaledClock(NOW, 1.0)
    with running_demo(tmp_path, itinerary, clock, broker_url=mosquitto.url) as demo:
        assert [b.vehicle.id for b in demo.buses] == ["vexin-01", "caux-01"]
        assert all(b.plan is not None and b.backfilled > 6 * 3600 for b in demo.buses)
        db = PunctualityStore(demo.store)

        def morning_detected() -> bool:
            visits = {v.id: v.facts for v in db.visits_between(MONDAY, MONDAY)}
            return all(
                visits[v].detected_arrival is not None and visits[v].detected_departure
                for v in (VESLY, TERRES)
            )

        wait_for(morning_detected, timeout=120, what="the morning's visits detected")
        visits = {v.id: v.facts for v in db.visits_between(MONDAY, MONDAY)}
        # The crew parks a few minutes early and leaves at the scheduled departure.
        vesly = visits[VESLY]
        assert vesly.detected_arrival is not None
        assert abs((vesly.detected_arrival - vesly.scheduled_arrival).total_seconds()) < 15 * 60
        wait_for(
            lambda: db.visit(HACQUEVILLE).facts.detected_arrival,  # type: ignore[union-attr]
            what="the arrival at Hacqueville",
        )
        hacqueville = db.visit(HACQUEVILLE)
        assert hacqueville is not None and hacqueville.facts.detected_departure is None

        with (
            serving(demo.app(TEST_USERS, clock)) as url,
            httpx.Client(
                base_url=url, headers={"Authorization": "Bearer coord-eure-token"}, timeout=10
            ) as api,
        ):
            confirmed = api.post(f"/api/v1/visits/{VESLY}/confirm")
            assert confirmed.status_code == 200, confirmed.text
            assert confirmed.json()["status"] in ("early", "on_time")

            # Live from now on: the bus is where today's plan puts it at its fix's time.
            vexin = demo.buses[0]
            assert vexin.plan is not None

            def live_fix() -> dict[str, object] | None:
                features = api.get("/api/v1/positions").json()["features"]
                mine = [f for f in features if f["id"] == "vexin-01"]
                if mine and datetime.fromisoformat(mine[0]["properties"]["time"]) > NOW:
                    return dict(mine[0])
                return None

            fix = wait_for(live_fix, timeout=60, what="a live fix of vexin-01")
            lon, lat = fix["geometry"]["coordinates"]  # type: ignore[index]
            when = datetime.fromisoformat(fix["properties"]["time"])  # type: ignore[index]
            truth = vexin.plan.motion_at(vexin.plan.seconds_of(when))
            assert haversine_m(lat, lon, truth.lat, truth.lon) < 30


def test_a_day_without_visits_keeps_the_bus_at_its_depot_unless_another_timetable_is_run(
    itinerary: Itinerary,
) -> None:
    saturday = date(2026, 11, 21)
    assert todays_plan(itinerary, "vexin-01", saturday, seed=0) is None
    mondays = with_timetable_of(itinerary, saturday, 1)
    plan = todays_plan(mondays, "vexin-01", saturday, seed=0)
    assert plan is not None
    assert [v.stop.id for v in plan.visits] == ["vesly", "hacqueville"]
    # The day so far: one fix a second from the start of the day, none after now.
    now = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    fixes = day_so_far(plan, now)
    assert fixes[0].t == plan.start and fixes[-1].t < now
    assert len(fixes) == int((now - plan.start).total_seconds())
    # Started again with the fixes stored up to 08:30 local, only the later ones are sent.
    later = day_so_far(plan, now, after=fixes[100].t)
    assert later[0].t > fixes[100].t and later == fixes[101:]
