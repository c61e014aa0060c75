"""GTFS-realtime feeds of an operator (SQLite, PostgreSQL): parsed back, every id found in
the static GTFS export, delays equal to the visits', cancelled visits skipped, public
messages as alerts, positions only while the bus works its day."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import pytest
from google.transit import gtfs_realtime_pb2 as rt

from api.app import create_app
from ingest.domain import IngestDomain
from ingest.itinerary import Itinerary
from ingest.punctuality.gtfs import export_gtfs
from ingest.punctuality.storage import PunctualityStore
from ingest.punctuality.tracker import PunctualityTracker
from ingest.settings import DomainSettings
from ingest.store import Store
from protocol.clock import ManualClock
from tests.ingest.punctuality.test_tracker import MONDAY, ingest, utc, vexin_monday
from tests.support.live import TEST_USERS, serving

NOW = utc(13, 5)  # 14:05 in Paris: Vesly held, the bus on its way to Hacqueville
COORD = {"Authorization": "Bearer coord-eure-token"}
SECRET_REASON = "arrêt maladie du médecin"
MESSAGE = "Passage reporté à jeudi, mêmes horaires"
FEEDS = ("trip-updates", "vehicle-positions", "alerts")


@dataclass
class World:
    url: str
    store: Store
    itinerary: Itinerary
    tuesday: str


@pytest.fixture
def world(store: Store, itinerary: Itinerary) -> Iterator[World]:
    tracker = PunctualityTracker(store, itinerary)
    tracker.start(MONDAY, past_days=1)
    ingest(store, tracker, [b for b in vexin_monday(itinerary) if b.samples[-1].t <= NOW])
    IngestDomain(store, itinerary, DomainSettings())  # records the itinerary for the API
    tuesday = PunctualityStore(store).planned_visits("vexin-01", MONDAY + timedelta(days=1))[0]
    with serving(create_app(store, TEST_USERS, clock=ManualClock(NOW))) as url:
        r = httpx.post(
            f"{url}/api/v1/visits/{tuesday.id}/cancel",
            json={"reason": SECRET_REASON, "public_message": MESSAGE},
            headers=COORD,
        )
        assert r.status_code == 200, r.text
        yield World(url, store, itinerary, tuesday.id)


def feed(url: str, name: str, operator: str = "doct-eure") -> rt.FeedMessage:
    r = httpx.get(f"{url}/public/{operator}/gtfs-rt/{name}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/x-protobuf"
    message = rt.FeedMessage()
    message.ParseFromString(r.content)
    assert message.header.gtfs_realtime_version == "2.0"
    assert message.header.timestamp == int(NOW.timestamp())
    return message


def static_ids(itinerary: Itinerary) -> dict[str, set[str]]:
    tables = export_gtfs(itinerary, MONDAY, MONDAY + timedelta(days=30), "https://x.fr")
    return {
        "trip_id": {t["trip_id"] for t in tables["trips.txt"]},
        "route_id": {r["route_id"] for r in tables["routes.txt"]},
        "stop_id": {s["stop_id"] for s in tables["stops.txt"]},
        "agency_id": {a["agency_id"] for a in tables["agency.txt"]},
        "stop_time": {
            (s["trip_id"], s["stop_id"], int(s["stop_sequence"])) for s in tables["stop_times.txt"]
        },
    }


def visits(url: str, day: str) -> dict[str, dict[str, object]]:
    body = httpx.get(f"{url}/api/v1/visits", params={"date": day}, headers=COORD).json()
    return {str(v["stop"]): v for v in body["visits"] if v["vehicle"] == "vexin-01"}


def test_trip_updates_agree_with_the_static_feed_and_the_visits(world: World) -> None:
    ids = static_ids(world.itinerary)
    message = feed(world.url, "trip-updates")
    (entity,) = message.entity
    update = entity.trip_update
    assert update.trip.trip_id in ids["trip_id"]
    assert update.trip.route_id == "vexin-01" and update.trip.start_date == "20261116"
    for stop in update.stop_time_update:
        assert (update.trip.trip_id, stop.stop_id, stop.stop_sequence) in ids["stop_time"]
    by_stop = {s.stop_id: s for s in update.stop_time_update}
    assert list(by_stop) == ["vesly", "hacqueville"]
    held = visits(world.url, "2026-11-16")["vesly"]
    arrival = datetime.fromisoformat(str(held["arrival"]))
    scheduled = datetime.fromisoformat(str(held["scheduled_arrival"]))
    departure = datetime.fromisoformat(str(held["departure"]))
    vesly = by_stop["vesly"]
    assert vesly.arrival.time == int(arrival.timestamp())
    assert vesly.arrival.delay == int(arrival.timestamp()) - int(scheduled.timestamp())
    assert vesly.departure.time == int(departure.timestamp())
    # Cancelled on the board: skipped in the feed at once.
    cancel = httpx.post(
        f"{world.url}/api/v1/visits/vexin-01:2026-11-16:hacqueville/cancel",
        json={"reason": "panne"},
        headers=COORD,
    )
    assert cancel.status_code == 200, cancel.text
    after = {
        s.stop_id: s for s in feed(world.url, "trip-updates").entity[0].trip_update.stop_time_update
    }
    skipped = rt.TripUpdate.StopTimeUpdate.SKIPPED
    assert after["hacqueville"].schedule_relationship == skipped
    assert after["vesly"].schedule_relationship != skipped


def positions_at(store: Store, when: datetime) -> rt.FeedMessage:
    with serving(create_app(store, TEST_USERS, clock=ManualClock(when))) as url:
        r = httpx.get(f"{url}/public/doct-eure/gtfs-rt/vehicle-positions")
    assert r.status_code == 200, r.text
    message = rt.FeedMessage()
    message.ParseFromString(r.content)
    return message


def test_the_position_is_published_only_while_the_bus_works_its_day(world: World) -> None:
    ids = static_ids(world.itinerary)
    rest = [b for b in vexin_monday(world.itinerary) if b.samples[-1].t > NOW]
    # The afternoon's fixes up to 15:52 UTC, the last visit ending at 16:00 UTC.
    for batch in rest[:-1]:
        world.store.save_batch(batch, batch.samples[-1].t)
    positions = httpx.get(f"{world.url}/api/v1/positions", headers=COORD).json()["features"]
    (staff_view,) = [f for f in positions if f["id"] == "vexin-01"]
    lon, lat = staff_view["geometry"]["coordinates"]
    fix = datetime.fromisoformat(staff_view["properties"]["time"])
    assert utc(15, 0) < fix < utc(16, 0)
    (entity,) = positions_at(world.store, fix + timedelta(minutes=2)).entity
    v = entity.vehicle
    assert v.trip.trip_id in ids["trip_id"] and v.trip.route_id in ids["route_id"]
    assert v.position.latitude == pytest.approx(lat, abs=1e-5)
    assert v.position.longitude == pytest.approx(lon, abs=1e-5)
    assert v.timestamp == int(fix.timestamp())
    # A fix gone stale: nothing.
    assert list(positions_at(world.store, fix + timedelta(minutes=11)).entity) == []
    # The drive home after the last visit: fresh fixes, but the day is over.
    world.store.save_batch(rest[-1], rest[-1].samples[-1].t)
    home = rest[-1].samples[-1].t
    assert home > utc(16, 0)
    assert list(positions_at(world.store, home + timedelta(minutes=1)).entity) == []
    assert list(positions_at(world.store, utc(23, 30)).entity) == []


def test_public_messages_are_alerts_and_reasons_are_not(world: World) -> None:
    ids = static_ids(world.itinerary)
    (entity,) = feed(world.url, "alerts").entity
    alert = entity.alert
    assert alert.effect == rt.Alert.NO_SERVICE
    assert alert.description_text.translation[0].text == MESSAGE
    assert alert.description_text.translation[0].language == "fr"
    (informed,) = alert.informed_entity
    assert informed.agency_id in ids["agency_id"]
    assert informed.stop_id in ids["stop_id"] and informed.route_id in ids["route_id"]
    assert informed.trip.trip_id in ids["trip_id"] and informed.trip.start_date == "20261117"
    for name in FEEDS:
        body = httpx.get(f"{world.url}/public/doct-eure/gtfs-rt/{name}").content
        assert SECRET_REASON.encode() not in body


def test_each_feed_has_a_json_form_and_unknown_operators_get_404(world: World) -> None:
    for name in FEEDS:
        r = httpx.get(f"{world.url}/public/doct-eure/gtfs-rt/{name}", params={"format": "json"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
        assert r.json()["header"]["gtfsRealtimeVersion"] == "2.0"
        assert httpx.get(f"{world.url}/public/nobody/gtfs-rt/{name}").status_code == 404
    base = f"{world.url}/public/doct-eure/gtfs-rt"
    assert httpx.get(f"{base}/trip-updates", params={"format": "xml"}).status_code == 422
    assert httpx.get(f"{base}/schedules").status_code == 404
    assert httpx.get(f"{world.url}/public/{'x' * 5000}/gtfs-rt/alerts").status_code == 404
    other = feed(world.url, "trip-updates", "cpts-caux")
    assert all(e.trip_update.trip.route_id == "caux-01" for e in other.entity)


def test_the_static_feed_served_beside_names_what_the_realtime_feeds_name(world: World) -> None:
    r = httpx.get(f"{world.url}/public/doct-eure/gtfs.zip")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        tables = {
            name: list(csv.DictReader(io.StringIO(archive.read(name).decode())))
            for name in archive.namelist()
        }
    assert [a["agency_id"] for a in tables["agency.txt"]] == ["doct-eure"]
    assert {r["route_id"] for r in tables["routes.txt"]} == {"vexin-01"}
    trips = {t["trip_id"] for t in tables["trips.txt"]}
    stops = {s["stop_id"] for s in tables["stops.txt"]}
    assert {s["trip_id"] for s in tables["stop_times.txt"]} == trips
    assert {s["stop_id"] for s in tables["stop_times.txt"]} == stops
    update = feed(world.url, "trip-updates").entity[0].trip_update
    assert update.trip.trip_id in trips
    assert {s.stop_id for s in update.stop_time_update} <= stops
    (alert,) = feed(world.url, "alerts").entity
    assert alert.alert.informed_entity[0].trip.trip_id in trips
    assert httpx.get(f"{world.url}/public/nobody/gtfs.zip").status_code == 404
