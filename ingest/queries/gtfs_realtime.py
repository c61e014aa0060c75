"""GTFS-realtime for journey planners: trip updates, vehicle positions and service alerts
of an operator, consistent with the static GTFS export (``ingest.punctuality.gtfs``: the
same ``trip_id``, ``route_id`` and ``stop_id``, the trips found by exporting the day).

What it says is what the public page says (``ingest.queries.public``): arrivals and
departures as they happened, expected times only when the bus's position or habits back
them, cancelled visits as skipped stops, the coordinators' public messages as alerts;
never an internal reason nor a count. A bus's position is published only while it works
its trip of the day — from an hour before its first visit to the end of its last — and
while its latest fix is fresh; never at night nor at its depot after the day.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from hashlib import sha256

from google.transit import gtfs_realtime_pb2 as rt

from ingest.itinerary import Itinerary
from ingest.punctuality.gtfs import (
    SERVICE_ADDED,
    SERVICE_REMOVED,
    WEEKDAYS,
    export_gtfs,
    parse_gtfs_time,
    service_day_origin,
)
from ingest.queries.public import PublicPassage, public_passages
from ingest.store import Position, Store

# Published around the day's visits only, and while the fix is this fresh.
POSITION_BEFORE_FIRST_VISIT = timedelta(hours=1)
POSITION_MAX_AGE = timedelta(minutes=10)
# Public messages of the visits of the coming days are alerts already.
ALERT_DAYS_AHEAD = 7


@dataclass(frozen=True)
class Call:
    stop_sequence: int
    stop_id: str
    scheduled_arrival: datetime
    scheduled_departure: datetime


@dataclass(frozen=True)
class TripOfDay:
    trip_id: str
    route_id: str
    start_date: str
    calls: tuple[Call, ...]


def trips_of_day(itinerary: Itinerary, day: date) -> dict[str, TripOfDay]:
    """Each vehicle's trip on ``day`` as the static export of that day has it."""
    tables = export_gtfs(itinerary, day, day, default_url="https://gtfs.invalid")
    weekday = WEEKDAYS[day.isoweekday() - 1]
    exceptions = tables["calendar_dates.txt"]
    removed = {r["service_id"] for r in exceptions if r["exception_type"] == SERVICE_REMOVED}
    added = {r["service_id"] for r in exceptions if r["exception_type"] == SERVICE_ADDED}
    running = {c["service_id"] for c in tables["calendar.txt"] if c[weekday] == "1"}
    running = (running - removed) | added
    times: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in tables["stop_times.txt"]:
        times[row["trip_id"]].append(row)
    origin = service_day_origin(day, itinerary.zone)
    found = {}
    for trip in tables["trips.txt"]:
        if trip["service_id"] not in running:
            continue
        calls = tuple(
            Call(
                int(r["stop_sequence"]),
                r["stop_id"],
                origin + timedelta(seconds=parse_gtfs_time(r["arrival_time"])),
                origin + timedelta(seconds=parse_gtfs_time(r["departure_time"])),
            )
            for r in sorted(times[trip["trip_id"]], key=lambda r: int(r["stop_sequence"]))
        )
        found[trip["route_id"]] = TripOfDay(
            trip["trip_id"], trip["route_id"], f"{day:%Y%m%d}", calls
        )
    return found


def _matched(
    trip: TripOfDay, passages: Sequence[PublicPassage]
) -> list[tuple[Call, PublicPassage | None]]:
    """Each call of the trip with the vehicle's passage at that stop and time (a visit the
    timetable itself cancelled is no call of the trip)."""
    by_key = {(p.stop, p.scheduled_arrival): p for p in passages}
    return [(c, by_key.get((c.stop_id, c.scheduled_arrival))) for c in trip.calls]


def _header(feed: rt.FeedMessage, now: datetime) -> None:
    feed.header.gtfs_realtime_version = "2.0"
    feed.header.incrementality = rt.FeedHeader.FULL_DATASET
    feed.header.timestamp = int(now.timestamp())


def _seconds(t: datetime) -> int:
    return int(t.timestamp())


def _todays_trips(itinerary: Itinerary, operator: str, now: datetime) -> dict[str, TripOfDay]:
    """The trip of each of the operator's buses today, by vehicle."""
    today = now.astimezone(itinerary.zone).date()
    vehicles = {v.id for v in itinerary.vehicles if v.operator == operator}
    return {v: t for v, t in trips_of_day(itinerary, today).items() if v in vehicles}


def _describe(descriptor: rt.TripDescriptor, trip: TripOfDay) -> None:
    """The trip as the static feed names it."""
    descriptor.trip_id = trip.trip_id
    descriptor.route_id = trip.route_id
    descriptor.start_date = trip.start_date


def trip_updates(
    store: Store, itinerary: Itinerary, operator: str, now: datetime
) -> rt.FeedMessage:
    """Today's trips of the operator's buses, each stop with its arrival (as it happened,
    or expected), its departure once the bus left, or skipped when cancelled."""
    feed = rt.FeedMessage()
    _header(feed, now)
    trips = _todays_trips(itinerary, operator, now)
    passages: dict[str, list[PublicPassage]] = defaultdict(list)
    today = now.astimezone(itinerary.zone).date()
    for passage in public_passages(store, operator, today, today, now):
        passages[passage.vehicle].append(passage)
    for vehicle, trip in sorted(trips.items()):
        entity = feed.entity.add()
        entity.id = f"trip-{trip.trip_id}-{trip.start_date}"
        update = entity.trip_update
        _describe(update.trip, trip)
        update.timestamp = _seconds(now)
        matched = _matched(trip, passages[vehicle])
        if matched and all(p is not None and p.status == "cancelled" for _, p in matched):
            update.trip.schedule_relationship = rt.TripDescriptor.CANCELED
            continue
        update.trip.schedule_relationship = rt.TripDescriptor.SCHEDULED
        for call, p in matched:
            stop = update.stop_time_update.add()
            stop.stop_sequence = call.stop_sequence
            stop.stop_id = call.stop_id
            relationship = rt.TripUpdate.StopTimeUpdate
            if p is None or p.status in ("planned", "not_held"):
                stop.schedule_relationship = relationship.NO_DATA
            elif p.status == "cancelled":
                stop.schedule_relationship = relationship.SKIPPED
            else:
                arrival = p.arrived or p.eta
                assert arrival is not None
                stop.arrival.time = _seconds(arrival)
                stop.arrival.delay = _seconds(arrival) - _seconds(call.scheduled_arrival)
                if p.left is not None:
                    stop.departure.time = _seconds(p.left)
                    stop.departure.delay = _seconds(p.left) - _seconds(call.scheduled_departure)
    return feed


def _fresh(position: Position | None, now: datetime) -> bool:
    return position is not None and now - position.t <= POSITION_MAX_AGE


def vehicle_positions(
    store: Store, itinerary: Itinerary, operator: str, now: datetime
) -> rt.FeedMessage:
    """The operator's buses working their trip of the day, where their latest fix puts
    them."""
    feed = rt.FeedMessage()
    _header(feed, now)
    trips = _todays_trips(itinerary, operator, now)
    latest = {p.vehicle: p for p in store.positions()}
    for vehicle, trip in sorted(trips.items()):
        if not trip.calls:
            continue
        opens = trip.calls[0].scheduled_arrival - POSITION_BEFORE_FIRST_VISIT
        closes = trip.calls[-1].scheduled_departure
        position = latest.get(vehicle)
        if not opens <= now <= closes or not _fresh(position, now):
            continue
        assert position is not None
        entity = feed.entity.add()
        entity.id = f"vehicle-{trip.route_id}"
        v = entity.vehicle
        _describe(v.trip, trip)
        v.vehicle.id = trip.route_id
        v.position.latitude = position.lat
        v.position.longitude = position.lon
        if position.course_deg is not None:
            v.position.bearing = position.course_deg
        if position.speed_mps is not None:
            v.position.speed = position.speed_mps
        v.timestamp = _seconds(position.t)
    return feed


def alert_id(visit_id: str) -> str:
    """An alert's id that names no vehicle: a hash of the visit id."""
    return "alerte-" + sha256(visit_id.encode()).hexdigest()[:16]


def service_alerts(
    store: Store, itinerary: Itinerary, operator: str, now: datetime
) -> rt.FeedMessage:
    """The coordinators' public messages of the operator's visits from today to a week
    ahead, each about its stop, route and trip: a cancellation as no service."""
    feed = rt.FeedMessage()
    _header(feed, now)
    zone = itinerary.zone
    today = now.astimezone(zone).date()
    last = today + timedelta(days=ALERT_DAYS_AHEAD)
    passages = [p for p in public_passages(store, operator, today, last, now) if p.message]
    trips_by_day = {day: trips_of_day(itinerary, day) for day in {p.day for p in passages}}
    for p in passages:
        entity = feed.entity.add()
        entity.id = alert_id(p.visit_id)
        alert = entity.alert
        period = alert.active_period.add()
        period.start = _seconds(service_day_origin(p.day, zone))
        period.end = _seconds(p.scheduled_departure)
        informed = alert.informed_entity.add()
        informed.agency_id = operator
        informed.route_id = p.vehicle
        informed.stop_id = p.stop
        trip = trips_by_day[p.day].get(p.vehicle)
        if trip is not None:
            _describe(informed.trip, trip)
        cancelled = p.status == "cancelled"
        alert.effect = rt.Alert.NO_SERVICE if cancelled else rt.Alert.OTHER_EFFECT
        alert.cause = rt.Alert.UNKNOWN_CAUSE
        what = "passage annulé" if cancelled else "information"
        header = alert.header_text.translation.add()
        header.language = "fr"
        header.text = f"Médicobus à {p.stop_name} le {p.day:%d/%m} : {what}"
        description = alert.description_text.translation.add()
        description.language = "fr"
        description.text = p.message or ""
    return feed
