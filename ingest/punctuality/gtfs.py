"""The timetable as a GTFS static feed, so journey planners can show the buses, and back.

A vehicle is a route (``route_type`` 3, bus); each weekday it runs is a trip of a weekly
service (``calendar.txt``) whose stop times are the slots. Everything that makes a date
differ from that weekly pattern — a public holiday, a cancelled day or visit, a one-off
change, an extra visit — becomes, for that date, the weekly service removed
(``calendar_dates.txt``, ``exception_type`` 2) and, if the bus still comes, a one-off
service added for that date only (``exception_type`` 1) with its own trip.

GTFS times count from "noon minus 12 h" of the service day, which is local midnight
except on the days the clocks change: the export compares every date in UTC, so a visit
at night on such a day gets a one-off trip with the right times, and the import converts
back the same way. A time past 24:00:00 belongs to the next morning; a weekly slot cannot
hold one, so the import refuses it with the trip named.

Hand-written on the csv module: the files are plain CSV and the libraries that read GTFS
(gtfs-kit, partridge) bring pandas for what is here a few hundred rows.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ingest.itinerary import (
    Calendar,
    CancelledDay,
    CancelledVisit,
    Change,
    ExtraVisit,
    Itinerary,
    Slot,
    Stop,
)
from ingest.public_holidays import public_holiday_name
from ingest.punctuality.schedule import (
    ScheduleError,
    ScheduleRules,
    expand_schedule,
    schedule_rules,
    visit_id,
)

GtfsTables = dict[str, list[dict[str, str]]]

COLUMNS: dict[str, tuple[str, ...]] = {
    "agency.txt": ("agency_id", "agency_name", "agency_url", "agency_timezone", "agency_lang"),
    "stops.txt": ("stop_id", "stop_name", "stop_lat", "stop_lon"),
    "routes.txt": ("route_id", "agency_id", "route_short_name", "route_long_name", "route_type"),
    "trips.txt": ("route_id", "service_id", "trip_id", "trip_headsign"),
    "stop_times.txt": (
        "trip_id",
        "arrival_time",
        "departure_time",
        "stop_id",
        "stop_sequence",
        "timepoint",
    ),
    "calendar.txt": (
        "service_id",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "start_date",
        "end_date",
    ),
    "calendar_dates.txt": ("service_id", "date", "exception_type"),
}
REQUIRED = ("agency.txt", "stops.txt", "routes.txt", "trips.txt", "stop_times.txt")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
ROUTE_TYPE_BUS = "3"
SERVICE_ADDED = "1"
SERVICE_REMOVED = "2"
DEFAULT_STOP_RADIUS_M = 150.0


class GtfsError(ValueError):
    """A feed that cannot be written or read; the message names the file, row or date."""


@dataclass(frozen=True, order=True)
class _Call:
    """The bus at a stop on a date, in UTC: what both sides of the conversion must agree on."""

    arrival: datetime
    departure: datetime
    stop: str


def service_day_origin(day: date, zone: ZoneInfo) -> datetime:
    """The instant GTFS times of ``day`` count from: local noon minus twelve hours."""
    noon = datetime.combine(day, time(12), tzinfo=zone).astimezone(UTC)
    return noon - timedelta(hours=12)


def format_gtfs_time(seconds: int) -> str:
    if seconds < 0:
        raise GtfsError(f"{seconds} s before the service day's origin cannot be written in GTFS")
    hours, rest = divmod(seconds, 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


def parse_gtfs_time(text: str) -> int:
    """Seconds from the service day's origin; ``H:MM:SS`` and hours past 24 are allowed."""
    parts = text.strip().split(":")
    try:
        if len(parts) != 3 or len(parts[1]) != 2 or len(parts[2]) != 2:
            raise ValueError
        hours, minutes, seconds = (int(p) for p in parts)
    except ValueError:
        raise GtfsError(f"{text!r} is not a GTFS time like 09:30:00") from None
    if hours < 0 or not (0 <= minutes < 60 and 0 <= seconds < 60):
        raise GtfsError(f"{text!r} is not a GTFS time like 09:30:00")
    return hours * 3600 + minutes * 60 + seconds


def _gtfs_date(day: date) -> str:
    return day.strftime("%Y%m%d")


def _parse_gtfs_date(text: str, where: str) -> date:
    try:
        return datetime.strptime(text.strip(), "%Y%m%d").date()
    except ValueError:
        raise GtfsError(f"{where}: {text!r} is not a date like 20261123") from None


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


# --- export ---------------------------------------------------------------------------------


def export_gtfs(
    itinerary: Itinerary, first: date, last: date, default_url: str | None = None
) -> GtfsTables:
    """The feed of the timetable from ``first`` to ``last`` (local dates, inclusive).

    ``default_url`` stands in for operators whose itinerary entry has no ``url`` (GTFS
    requires one per agency)."""
    if last < first:
        raise GtfsError(f"the feed ends ({last}) before it starts ({first})")
    zone = itinerary.zone
    rules = schedule_rules(itinerary)
    tables: GtfsTables = {name: [] for name in COLUMNS}
    for op in itinerary.operators:
        url = op.url or default_url
        if not url:
            raise GtfsError(
                f"operator {op.id} has no url (GTFS agency_url is required): add url to its "
                "[[operator]] entry or give a default"
            )
        tables["agency.txt"].append(
            {
                "agency_id": op.id,
                "agency_name": op.name,
                "agency_url": url,
                "agency_timezone": itinerary.timezone,
                "agency_lang": "fr",
            }
        )
    for s in itinerary.stops:
        tables["stops.txt"].append(
            {"stop_id": s.id, "stop_name": s.name, "stop_lat": f"{s.lat}", "stop_lon": f"{s.lon}"}
        )
    for v in itinerary.vehicles:
        tables["routes.txt"].append(
            {
                "route_id": v.id,
                "agency_id": v.operator,
                "route_short_name": v.id,
                "route_long_name": v.label,
                "route_type": ROUTE_TYPE_BUS,
            }
        )
        _export_vehicle(
            itinerary, rules=rules, vehicle=v.id, first=first, last=last, zone=zone, tables=tables
        )
    return tables


def _add_trip(
    tables: GtfsTables, vehicle: str, service: str, trip: str, calls: list[tuple[str, int, int]]
) -> None:
    stop_names = {row["stop_id"]: row["stop_name"] for row in tables["stops.txt"]}
    tables["trips.txt"].append(
        {
            "route_id": vehicle,
            "service_id": service,
            "trip_id": trip,
            "trip_headsign": stop_names.get(calls[-1][0], calls[-1][0]),
        }
    )
    for n, (stop, arrive_s, depart_s) in enumerate(calls, start=1):
        tables["stop_times.txt"].append(
            {
                "trip_id": trip,
                "arrival_time": format_gtfs_time(arrive_s),
                "departure_time": format_gtfs_time(depart_s),
                "stop_id": stop,
                "stop_sequence": str(n),
                "timepoint": "1",
            }
        )


def _export_vehicle(
    itinerary: Itinerary,
    *,
    rules: ScheduleRules,
    vehicle: str,
    first: date,
    last: date,
    zone: ZoneInfo,
    tables: GtfsTables,
) -> None:
    validity = rules.vehicle_validity.get(vehicle, rules.validity)
    start = max(first, validity.first) if validity.first else first
    end = min(last, validity.last) if validity.last else last
    slots_by_weekday: dict[int, list[Slot]] = defaultdict(list)
    for slot in itinerary.slots_of(vehicle):
        slots_by_weekday[slot.weekday].append(slot)
    weekly_service: dict[int, str] = {}
    if start <= end:
        for weekday, slots in sorted(slots_by_weekday.items()):
            service = f"{vehicle}-{WEEKDAYS[weekday - 1]}"
            weekly_service[weekday] = service
            flags = {name: "1" if n == weekday else "0" for n, name in enumerate(WEEKDAYS, 1)}
            tables["calendar.txt"].append(
                {
                    "service_id": service,
                    **flags,
                    "start_date": _gtfs_date(start),
                    "end_date": _gtfs_date(end),
                }
            )
            calls = [(s.stop, _seconds(s.arrive), _seconds(s.depart)) for s in slots]
            _add_trip(tables, vehicle, service, service, calls)
    try:
        visits = expand_schedule(itinerary, first, last, rules, [vehicle])
    except ScheduleError as exc:
        raise GtfsError(str(exc)) from None
    by_day: dict[date, list[_Call]] = defaultdict(list)
    for v in visits:
        if not v.cancelled:
            by_day[v.day].append(_Call(v.scheduled_arrival, v.scheduled_departure, v.stop))
    for day in _days(first, last):
        origin = service_day_origin(day, zone)
        weekday = day.isoweekday()
        runs_weekly = weekday in weekly_service and start <= day <= end
        pattern = sorted(
            _Call(origin + timedelta(seconds=a), origin + timedelta(seconds=d), stop)
            for stop, a, d in (
                (s.stop, _seconds(s.arrive), _seconds(s.depart))
                for s in slots_by_weekday.get(weekday, [])
            )
            if runs_weekly
        )
        actual = sorted(by_day.get(day, []))
        if actual == pattern:
            continue
        if runs_weekly:
            tables["calendar_dates.txt"].append(
                {
                    "service_id": weekly_service[weekday],
                    "date": _gtfs_date(day),
                    "exception_type": SERVICE_REMOVED,
                }
            )
        if actual:
            service = f"{vehicle}-{_gtfs_date(day)}"
            tables["calendar_dates.txt"].append(
                {"service_id": service, "date": _gtfs_date(day), "exception_type": SERVICE_ADDED}
            )
            try:
                calls = [
                    (
                        c.stop,
                        int((c.arrival - origin).total_seconds()),
                        int((c.departure - origin).total_seconds()),
                    )
                    for c in actual
                ]
                _add_trip(tables, vehicle, service, service, calls)
            except GtfsError as exc:
                raise GtfsError(f"{vehicle} on {day}: {exc}") from None


# --- files ----------------------------------------------------------------------------------


def _csv_text(name: str, rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS[name], lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _names(tables: GtfsTables) -> list[str]:
    return [n for n in COLUMNS if n in tables and (tables[n] or n in REQUIRED)]


def _zip(tables: GtfsTables, target: Path | io.BytesIO) -> None:
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in _names(tables):
            archive.writestr(name, _csv_text(name, tables[name]).encode("utf-8"))


def write_gtfs(tables: GtfsTables, target: Path) -> list[str]:
    """Write the feed into a folder, or a zip archive if ``target`` ends in ``.zip``; return
    the file names written."""
    names = _names(tables)
    if target.suffix.lower() == ".zip":
        target.parent.mkdir(parents=True, exist_ok=True)
        _zip(tables, target)
    else:
        target.mkdir(parents=True, exist_ok=True)
        for name in names:
            (target / name).write_text(_csv_text(name, tables[name]), encoding="utf-8", newline="")
    return names


def gtfs_zip(tables: GtfsTables) -> bytes:
    """The feed as a zip archive in memory."""
    out = io.BytesIO()
    _zip(tables, out)
    return out.getvalue()


def operator_feed(tables: GtfsTables, operator: str) -> GtfsTables:
    """The part of a feed that is one operator's: its agency, routes, their trips and stop
    times, the stops and services they use."""
    routes = [r for r in tables["routes.txt"] if r["agency_id"] == operator]
    route_ids = {r["route_id"] for r in routes}
    trips = [t for t in tables["trips.txt"] if t["route_id"] in route_ids]
    trip_ids = {t["trip_id"] for t in trips}
    services = {t["service_id"] for t in trips}
    stop_times = [s for s in tables["stop_times.txt"] if s["trip_id"] in trip_ids]
    stop_ids = {s["stop_id"] for s in stop_times}
    return {
        **{name: [] for name in COLUMNS},
        "agency.txt": [a for a in tables["agency.txt"] if a["agency_id"] == operator],
        "stops.txt": [s for s in tables["stops.txt"] if s["stop_id"] in stop_ids],
        "routes.txt": routes,
        "trips.txt": trips,
        "stop_times.txt": stop_times,
        "calendar.txt": [c for c in tables["calendar.txt"] if c["service_id"] in services],
        "calendar_dates.txt": [
            c for c in tables["calendar_dates.txt"] if c["service_id"] in services
        ],
    }


def _rows(name: str, text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    if reader.fieldnames is None:
        raise GtfsError(f"{name} is empty (it needs at least a header line)")
    fields = [f.strip() for f in reader.fieldnames]
    reader.fieldnames = fields
    return [{k: (v or "").strip() for k, v in row.items() if k is not None} for row in reader]


def read_gtfs(source: Path) -> GtfsTables:
    """The tables of a feed in a folder or a zip archive."""
    texts: dict[str, str] = {}
    try:
        if source.is_dir():
            for name in COLUMNS:
                path = source / name
                if path.is_file():
                    texts[name] = path.read_text(encoding="utf-8")
        elif source.is_file():
            with zipfile.ZipFile(source) as archive:
                present = set(archive.namelist())
                for name in COLUMNS:
                    if name in present:
                        texts[name] = archive.read(name).decode("utf-8")
        else:
            raise GtfsError(f"{source}: no such folder or zip file")
    except zipfile.BadZipFile:
        raise GtfsError(f"{source}: not a zip archive nor a folder") from None
    except UnicodeDecodeError as exc:
        raise GtfsError(f"{source}: a file is not UTF-8 ({exc.reason})") from None
    missing = [n for n in REQUIRED if n not in texts]
    if missing:
        raise GtfsError(f"{source}: missing {', '.join(missing)}")
    if "calendar.txt" not in texts and "calendar_dates.txt" not in texts:
        raise GtfsError(f"{source}: needs calendar.txt or calendar_dates.txt")
    return {name: _rows(name, text) for name, text in texts.items()}


# --- import ---------------------------------------------------------------------------------


def _field(row: Mapping[str, str], key: str, where: str) -> str:
    value = row.get(key, "")
    if not value:
        raise GtfsError(f"{where}: {key} is missing")
    return value


@dataclass
class _Service:
    weekdays: frozenset[int]
    start: date | None
    end: date | None
    added: set[date]
    removed: set[date]

    def runs_on(self, day: date) -> bool:
        if day in self.removed:
            return False
        if day in self.added:
            return True
        return (
            day.isoweekday() in self.weekdays
            and self.start is not None
            and self.end is not None
            and self.start <= day <= self.end
        )


def _services(tables: GtfsTables) -> dict[str, _Service]:
    services: dict[str, _Service] = {}
    for i, row in enumerate(tables.get("calendar.txt", []), start=2):
        where = f"calendar.txt line {i}"
        sid = _field(row, "service_id", where)
        weekdays = frozenset(n for n, name in enumerate(WEEKDAYS, 1) if row.get(name) == "1")
        start = _parse_gtfs_date(_field(row, "start_date", where), where)
        end = _parse_gtfs_date(_field(row, "end_date", where), where)
        if end < start:
            raise GtfsError(f"{where}: service {sid} ends before it starts")
        services[sid] = _Service(weekdays, start, end, set(), set())
    for i, row in enumerate(tables.get("calendar_dates.txt", []), start=2):
        where = f"calendar_dates.txt line {i}"
        sid = _field(row, "service_id", where)
        day = _parse_gtfs_date(_field(row, "date", where), where)
        kind = _field(row, "exception_type", where)
        service = services.setdefault(sid, _Service(frozenset(), None, None, set(), set()))
        if kind == SERVICE_ADDED:
            service.added.add(day)
        elif kind == SERVICE_REMOVED:
            service.removed.add(day)
        else:
            raise GtfsError(
                f"{where}: exception_type {kind!r} is neither 1 (added) nor 2 (removed)"
            )
    return services


def _stop_times(tables: GtfsTables) -> dict[str, list[tuple[str, int, int]]]:
    raw: dict[str, list[tuple[int, str, int, int]]] = defaultdict(list)
    for i, row in enumerate(tables["stop_times.txt"], start=2):
        where = f"stop_times.txt line {i}"
        trip = _field(row, "trip_id", where)
        try:
            sequence = int(_field(row, "stop_sequence", where))
        except ValueError:
            raise GtfsError(f"{where}: stop_sequence is not a whole number") from None
        arrival = row.get("arrival_time") or row.get("departure_time") or ""
        departure = row.get("departure_time") or arrival
        if not arrival:
            raise GtfsError(f"{where}: a médicobus visit needs its arrival and departure times")
        try:
            a, d = parse_gtfs_time(arrival), parse_gtfs_time(departure)
        except GtfsError as exc:
            raise GtfsError(f"{where}: {exc}") from None
        raw[trip].append((sequence, _field(row, "stop_id", where), a, d))
    return {trip: [(s, a, d) for _, s, a, d in sorted(calls)] for trip, calls in raw.items()}


def import_gtfs(tables: GtfsTables, fleet: Itinerary) -> Itinerary:
    """The itinerary a feed describes: its stops, weekly slots, validity and exceptions, for
    the vehicles (routes, by id) and operators of ``fleet``.

    GTFS has no stop radius nor distance to the nearest surgery: a stop also in ``fleet``
    keeps them, a new one gets a radius of 150 m."""
    zones = {row.get("agency_timezone", "") for row in tables["agency.txt"]}
    if len(zones) != 1 or not next(iter(zones)):
        raise GtfsError("agency.txt: every agency needs the same agency_timezone")
    timezone = next(iter(zones))
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise GtfsError(f"agency.txt: unknown time zone {timezone!r}") from None

    known_stops = {s.id: s for s in fleet.stops}
    stops: dict[str, Stop] = {}
    for i, row in enumerate(tables["stops.txt"], start=2):
        where = f"stops.txt line {i}"
        if row.get("location_type", "0") not in ("", "0"):
            continue  # stations, entrances and nodes are not places a bus parks at
        sid = _field(row, "stop_id", where)
        old = known_stops.get(sid)
        try:
            stops[sid] = Stop(
                id=sid,
                name=row.get("stop_name") or sid,
                lat=float(_field(row, "stop_lat", where)),
                lon=float(_field(row, "stop_lon", where)),
                radius_m=old.radius_m if old else DEFAULT_STOP_RADIUS_M,
                nearest_surgery_km=old.nearest_surgery_km if old else 0.0,
            )
        except ValueError as exc:
            raise GtfsError(f"{where}: {exc}") from None
    for sid, old in known_stops.items():
        stops.setdefault(sid, old)  # depots need not be in the feed

    vehicles = {v.id for v in fleet.vehicles}
    services = _services(tables)
    times = _stop_times(tables)
    trips_of: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for i, row in enumerate(tables["trips.txt"], start=2):
        where = f"trips.txt line {i}"
        route, trip = _field(row, "route_id", where), _field(row, "trip_id", where)
        service = _field(row, "service_id", where)
        if route not in vehicles:
            raise GtfsError(f"{where}: route {route!r} is not a vehicle of the fleet file")
        if service not in services:
            raise GtfsError(f"{where}: service {service!r} is in neither calendar file")
        if trip not in times:
            raise GtfsError(f"{where}: trip {trip!r} has no stop times")
        for stop, _, _ in times[trip]:
            if stop not in stops:
                raise GtfsError(f"stop_times.txt: trip {trip!r} calls at unknown stop {stop!r}")
        trips_of[route].append((trip, service))

    slots: list[Slot] = []
    for vehicle, trips in trips_of.items():
        slots.extend(_weekly_slots(vehicle, trips, services, times))
    weekly = fleet.model_copy(
        update={
            "timezone": timezone,
            "stops": list(stops.values()),
            "slots": slots,
            "calendar": Calendar(),
            "cancelled_days": [],
            "cancelled_visits": [],
            "changes": [],
            "extra_visits": [],
        }
    )
    weekly = Itinerary.model_validate(weekly.model_dump(by_alias=True))
    truth = {
        vehicle: _calls_by_day(trips, services, times, zone) for vehicle, trips in trips_of.items()
    }
    return _with_exceptions(weekly, truth, services, trips_of)


def _weekly_slots(
    vehicle: str,
    trips: list[tuple[str, str]],
    services: Mapping[str, _Service],
    times: Mapping[str, list[tuple[str, int, int]]],
) -> list[Slot]:
    slots: list[Slot] = []
    taken: dict[int, str] = {}
    for trip, service in trips:
        for weekday in sorted(services[service].weekdays):
            if weekday in taken:
                raise GtfsError(
                    f"route {vehicle}: trips {taken[weekday]!r} and {trip!r} both run on "
                    f"{WEEKDAYS[weekday - 1]}s; the itinerary has one weekly tour per vehicle"
                )
            taken[weekday] = trip
            for stop, a, d in times[trip]:
                if d >= 24 * 3600:
                    raise GtfsError(
                        f"trip {trip!r}: {format_gtfs_time(d)} at {stop} is past midnight; a "
                        "weekly slot keeps a visit within its day"
                    )
                if d <= a:
                    raise GtfsError(
                        f"trip {trip!r}: at {stop} the departure {format_gtfs_time(d)} is not "
                        f"after the arrival {format_gtfs_time(a)}; a visit lasts"
                    )
                slots.append(
                    Slot(
                        vehicle=vehicle,
                        weekday=weekday,
                        stop=stop,
                        arrive=time(a // 3600, a // 60 % 60, a % 60),
                        depart=time(d // 3600, d // 60 % 60, d % 60),
                    )
                )
    return slots


def _calls_by_day(
    trips: list[tuple[str, str]],
    services: Mapping[str, _Service],
    times: Mapping[str, list[tuple[str, int, int]]],
    zone: ZoneInfo,
) -> dict[date, list[_Call]]:
    days: set[date] = set()
    for _, sid in trips:
        s = services[sid]
        days |= s.added
        if s.weekdays and s.start is not None and s.end is not None:
            days |= set(_days(s.start, s.end))
    calls: dict[date, list[_Call]] = {}
    for day in sorted(days):
        origin = service_day_origin(day, zone)
        on_day = [
            _Call(origin + timedelta(seconds=a), origin + timedelta(seconds=d), stop)
            for trip, sid in trips
            if services[sid].runs_on(day)
            for stop, a, d in times[trip]
        ]
        calls[day] = sorted(on_day)
    return calls


def _planned(itinerary: Itinerary, vehicle: str, day: date) -> list[_Call]:
    return sorted(
        _Call(v.scheduled_arrival, v.scheduled_departure, v.stop)
        for v in expand_schedule(itinerary, day, day, schedule_rules(itinerary), [vehicle])
        if not v.cancelled
    )


def _with_exceptions(
    weekly: Itinerary,
    truth: Mapping[str, Mapping[date, list[_Call]]],
    services: Mapping[str, _Service],
    trips_of: Mapping[str, list[tuple[str, str]]],
) -> Itinerary:
    """Validity, holidays and one-off exceptions that make the weekly slots say what the
    feed says on every date it covers."""
    zone = weekly.zone
    periods: dict[str, tuple[date, date]] = {}
    for vehicle, trips in trips_of.items():
        weekly_services = [services[s] for _, s in trips if services[s].weekdays]
        starts = [s.start for s in weekly_services if s.start is not None]
        ends = [s.end for s in weekly_services if s.end is not None]
        if starts and ends:
            periods[vehicle] = (min(starts), max(ends))
    shared = set(periods.values())
    valid_from: date | None = None
    valid_until: date | None = None
    vehicles = list(weekly.vehicles)
    if len(shared) == 1 and len(periods) == len(vehicles):
        valid_from, valid_until = next(iter(shared))
    else:
        vehicles = [
            v.model_copy(update={"valid_from": periods[v.id][0], "valid_until": periods[v.id][1]})
            if v.id in periods
            else v
            for v in vehicles
        ]

    # Public holidays are skipped unless the feed runs the weekly pattern on all of them.
    base = weekly.model_copy(
        update={
            "vehicles": vehicles,
            "calendar": Calendar(
                valid_from=valid_from, valid_until=valid_until, skip_public_holidays=False
            ),
        }
    )
    holidays = {day for by_day in truth.values() for day in by_day if public_holiday_name(day)}
    worked = sorted(
        day
        for day in holidays
        if all(
            truth[v][day] == _planned(base, v, day) and truth[v][day]
            for v in truth
            if day in truth[v]
        )
    )
    calendar = Calendar(valid_from=valid_from, valid_until=valid_until, worked_holidays=worked)
    ruled = base.model_copy(update={"calendar": calendar})

    cancelled_days: list[CancelledDay] = []
    cancelled_visits: list[CancelledVisit] = []
    changes: list[Change] = []
    extras: list[ExtraVisit] = []
    for vehicle, by_day in truth.items():
        for day, calls in by_day.items():
            plan = _planned(ruled, vehicle, day)
            if calls == plan:
                continue
            if not calls:
                cancelled_days.append(CancelledDay(day=day, vehicle=vehicle))
                continue
            planned_ids = _ids(vehicle, day, plan)
            for vid, call in _ids(vehicle, day, calls).items():
                local_a = _local_time(call.arrival, day, zone, vid)
                local_d = _local_time(call.departure, day, zone, vid)
                if vid in planned_ids:
                    if call != planned_ids.pop(vid):
                        changes.append(Change(visit=vid, arrive=local_a, depart=local_d))
                else:
                    extras.append(
                        ExtraVisit(
                            vehicle=vehicle, day=day, stop=call.stop, arrive=local_a, depart=local_d
                        )
                    )
            cancelled_visits.extend(CancelledVisit(visit=vid) for vid in planned_ids)
    result = ruled.model_copy(
        update={
            "cancelled_days": cancelled_days,
            "cancelled_visits": cancelled_visits,
            "changes": changes,
            "extra_visits": extras,
        }
    )
    result = Itinerary.model_validate(result.model_dump(by_alias=True))
    for vehicle, by_day in truth.items():
        for day, calls in by_day.items():
            if _planned(result, vehicle, day) != calls:
                raise GtfsError(
                    f"{vehicle} on {day}: the feed's visits cannot be written as this "
                    "itinerary's weekly slots and exceptions"
                )
    return result


def _ids(vehicle: str, day: date, calls: list[_Call]) -> dict[str, _Call]:
    occurrences: Counter[str] = Counter()
    ids: dict[str, _Call] = {}
    for call in calls:
        occurrences[call.stop] += 1
        ids[visit_id(vehicle, day, call.stop, occurrences[call.stop])] = call
    return ids


def _local_time(instant: datetime, day: date, zone: ZoneInfo, vid: str) -> time:
    local = instant.astimezone(zone)
    if local.date() != day:
        raise GtfsError(f"visit {vid} at {local.isoformat()} is not on its service day {day}")
    return local.time().replace(tzinfo=None)
