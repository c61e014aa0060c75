"""The public face of each operator, without sign-in: a page of this week's passages and
today's status, an embeddable view of it, and iCalendar feeds. Only places, times and the
service's status (see :mod:`ingest.queries.public`); cached (ETag, Cache-Control) and
limited per client address."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib import resources
from typing import Annotated
from zoneinfo import ZoneInfo

import icalendar
import jinja2
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from google.protobuf.json_format import MessageToDict

from api.deps import get_clock, get_store
from api.scope import itinerary_zone
from api.throttle import PerMinute
from ingest.itinerary import Itinerary
from ingest.punctuality.gtfs import export_gtfs, gtfs_zip, operator_feed
from ingest.queries import gtfs_realtime
from ingest.queries.public import PublicPassage, public_passages
from ingest.reports.configuration import load_configuration, load_itinerary
from ingest.store import Store

router = APIRouter(prefix="/public", tags=["public"])
StoreDep = Annotated[Store, Depends(get_store)]

_OPERATOR_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_AGE_S = 30
CALENDAR_PAST_DAYS = 7
CALENDAR_AHEAD_DAYS = 60
# French names: the page is rendered on the server, where no locale data is assumed.
_DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip
_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(resources.files("api") / "templates")),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class PublicLimits:
    """Requests per minute and client address; sites allowed to frame the embedded view."""

    per_minute: int = 120
    frame_ancestors: tuple[str, ...] = ()


def _limits(request: Request) -> PublicLimits:
    found: PublicLimits = getattr(request.app.state, "public_limits", PublicLimits())
    return found


def rate_limited(request: Request) -> None:
    limiter: PerMinute | None = getattr(request.app.state, "public_limiter", None)
    if limiter is None:
        limiter = request.app.state.public_limiter = PerMinute(
            _limits(request).per_minute, "public", "trop de demandes : réessayez dans {wait} s"
        )
    limiter.count(request.client.host if request.client else "unknown")


Limited = Annotated[None, Depends(rate_limited)]


def _operator_name(store: Store, operator: str) -> str:
    """The operator's name; 404 for an operator the system does not know."""
    found = load_configuration(store)
    names = found.operators if found is not None else {}
    if _OPERATOR_ID.fullmatch(operator):
        if operator in names:
            return names[operator]
        if any(v.operator == operator for v in store.vehicles()):
            return operator
    raise HTTPException(status_code=404, detail="aucun service de ce nom")


def _cached(request: Request, body: bytes, media_type: str, headers: dict[str, str]) -> Response:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {**headers, "ETag": etag, "Cache-Control": f"public, max-age={MAX_AGE_S}"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(content=body, media_type=media_type, headers=headers)


def event_uid(visit_id: str) -> str:
    """A passage's calendar UID: stable, and naming no vehicle."""
    return hashlib.sha256(visit_id.encode()).hexdigest()[:32] + "@medicobus"


def _now(request: Request) -> datetime:
    return get_clock(request).now()


def _hhmm(t: datetime, zone: ZoneInfo) -> str:
    return t.astimezone(zone).strftime("%H:%M")


def _day_label(day: date) -> str:
    return f"{_DAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]}"


def _status_text(p: PublicPassage, zone: ZoneInfo) -> str:
    late = f" — en retard d'environ {p.late_min} min" if p.late_min else ""
    if p.status == "on_the_way" and p.eta is not None:
        return f"En route : arrivée prévue vers {_hhmm(p.eta, zone)}{late}"
    if p.status == "on_site" and p.arrived is not None:
        return f"Sur place depuis {_hhmm(p.arrived, zone)}{late}"
    if p.status == "left" and p.left is not None:
        return f"Passé : reparti à {_hhmm(p.left, zone)}"
    if p.status == "cancelled":
        return "Annulé"
    if p.status == "not_held":
        return "Passage non effectué"
    return "Prévu"


def _shown(p: PublicPassage, zone: ZoneInfo) -> dict[str, object]:
    return {
        "stop_name": p.stop_name,
        "hours": f"{_hhmm(p.scheduled_arrival, zone)}–{_hhmm(p.scheduled_departure, zone)}",
        "status": p.status,
        "status_text": _status_text(p, zone),
        "css": "late" if p.late_min and p.status in ("on_the_way", "on_site") else p.status,
        "message": p.message,
    }


def _page(request: Request, store: Store, operator: str, embedded: bool) -> bytes:
    name = _operator_name(store, operator)
    zone = itinerary_zone(store)
    now = _now(request)
    today = now.astimezone(zone).date()
    monday = today - timedelta(days=today.weekday())
    passages = public_passages(store, operator, monday, monday + timedelta(days=6), now)
    week = [
        {
            "label": _day_label(day),
            "passages": [_shown(p, zone) for p in passages if p.day == day],
        }
        for day in sorted({p.day for p in passages})
    ]
    html = _TEMPLATES.get_template("public.html.j2").render(
        operator_name=name,
        updated=_hhmm(now, zone),
        today_label=_day_label(today),
        today=[_shown(p, zone) for p in passages if p.day == today],
        week=week,
        embedded=embedded,
        calendar_url=f"/public/{operator}/passages.ics",
    )
    return html.encode()


_PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "


@router.get("/{operator}", include_in_schema=False)
def public_page(request: Request, operator: str, store: StoreDep, _: Limited) -> Response:
    """This week's passages and today's status, in French, for patients and partners."""
    body = _page(request, store, operator, embedded=False)
    headers = {"Content-Security-Policy": _PAGE_CSP + "frame-ancestors 'none'"}
    return _cached(request, body, "text/html; charset=utf-8", headers)


@router.get("/{operator}/embed", include_in_schema=False)
def public_embed(request: Request, operator: str, store: StoreDep, _: Limited) -> Response:
    """The same, without header and footer, for a commune's website to frame (only the
    sites listed in the API's ``public_frame_ancestors`` may)."""
    body = _page(request, store, operator, embedded=True)
    allowed = " ".join(_limits(request).frame_ancestors) or "'none'"
    headers = {"Content-Security-Policy": _PAGE_CSP + f"frame-ancestors {allowed}"}
    return _cached(request, body, "text/html; charset=utf-8", headers)


def _calendar(request: Request, store: Store, operator: str, stop: str | None) -> bytes:
    name = _operator_name(store, operator)
    zone = itinerary_zone(store)
    now = _now(request)
    today = now.astimezone(zone).date()
    passages = public_passages(
        store,
        operator,
        today - timedelta(days=CALENDAR_PAST_DAYS),
        today + timedelta(days=CALENDAR_AHEAD_DAYS),
        now,
    )
    if stop is not None:
        passages = [p for p in passages if p.stop == stop]
        if not passages:
            raise HTTPException(status_code=404, detail="aucun passage à cet arrêt")
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Médicobus//Passages//FR")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"Médicobus — {name}" + (f" — {passages[0].stop_name}" if stop else ""))
    cal.add("x-wr-timezone", str(zone))
    for p in passages:
        event = icalendar.Event()
        event.add("uid", event_uid(p.visit_id))
        event.add("dtstamp", now)
        event.add("dtstart", p.scheduled_arrival)
        event.add("dtend", p.scheduled_departure)
        event.add("summary", f"Médicobus à {p.stop_name}")
        event.add("location", p.stop_name)
        event.add("status", "CANCELLED" if p.status == "cancelled" else "CONFIRMED")
        event.add("transp", "TRANSPARENT")
        if p.message:
            event.add("description", p.message)
        cal.add_component(event)
    return bytes(cal.to_ical())


@router.get("/{operator}/passages.ics", include_in_schema=False)
def public_calendar(request: Request, operator: str, store: StoreDep, _: Limited) -> Response:
    """Every passage of the operator from a week ago to two months ahead (RFC 5545)."""
    body = _calendar(request, store, operator, None)
    return _cached(request, body, "text/calendar; charset=utf-8", {})


@router.get("/{operator}/arrets/{stop}.ics", include_in_schema=False)
def public_stop_calendar(
    request: Request, operator: str, stop: str, store: StoreDep, _: Limited
) -> Response:
    """The passages at one stop (RFC 5545)."""
    body = _calendar(request, store, operator, stop)
    return _cached(request, body, "text/calendar; charset=utf-8", {})


def _recorded_itinerary(store: Store) -> Itinerary:
    """The itinerary the ingest recorded; 503 until it has started once."""
    found = load_itinerary(store)
    if found is None:
        raise HTTPException(status_code=503, detail="le service n'a pas encore démarré")
    return found


_FEEDS = {
    "trip-updates": gtfs_realtime.trip_updates,
    "vehicle-positions": gtfs_realtime.vehicle_positions,
    "alerts": gtfs_realtime.service_alerts,
}


@router.get("/{operator}/gtfs-rt/{feed}", include_in_schema=False)
def public_gtfs_realtime(
    request: Request,
    operator: str,
    feed: str,
    store: StoreDep,
    _: Limited,
    format: str | None = None,
) -> Response:
    """GTFS-realtime of the operator (``trip-updates``, ``vehicle-positions``, ``alerts``)
    as protobuf, or as JSON with ``format=json`` for reading it; the ids are those of
    ``medicobus timetable export-gtfs``."""
    _operator_name(store, operator)
    build = _FEEDS.get(feed)
    if build is None:
        raise HTTPException(status_code=404, detail=f"flux inconnu : {', '.join(_FEEDS)}")
    itinerary = _recorded_itinerary(store)
    message = build(store, itinerary, operator, _now(request))
    if format == "json":
        body = json.dumps(MessageToDict(message), ensure_ascii=False).encode()
        return _cached(request, body, "application/json", {})
    if format not in (None, "protobuf"):
        raise HTTPException(status_code=422, detail="format : protobuf ou json")
    return _cached(request, message.SerializeToString(), "application/x-protobuf", {})


@router.get("/{operator}/gtfs.zip", include_in_schema=False)
def public_gtfs(request: Request, operator: str, store: StoreDep, _: Limited) -> Response:
    """The operator's timetable as a static GTFS feed from today to two months ahead: the
    trips, routes and stops the GTFS-realtime feeds name."""
    _operator_name(store, operator)
    itinerary = _recorded_itinerary(store)
    today = _now(request).astimezone(itinerary.zone).date()
    page = f"{str(request.base_url).rstrip('/')}/public/{operator}"
    tables = export_gtfs(itinerary, today, today + timedelta(days=CALENDAR_AHEAD_DAYS), page)
    body = gtfs_zip(operator_feed(tables, operator))
    headers = {"Content-Disposition": f'attachment; filename="gtfs-{operator}.zip"'}
    return _cached(request, body, "application/zip", headers)
