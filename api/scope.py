"""Shared by the routers: a vehicle the caller may see, a period of local days, the
settings the ingest reports with, and the visits' figures."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Final
from zoneinfo import ZoneInfo

from fastapi import Depends, HTTPException, Path, Request
from pydantic import AfterValidator, StringConstraints

from api.auth import Principal
from api.deps import get_store
from ingest.local_days import LocalDay
from ingest.reports.configuration import ReportConfiguration, load_configuration
from ingest.store import Store, VehicleRow
from ingest.visit_figures import NoVisitFigures, VisitFigures

MAX_PERIOD_DAYS: Final = 400
DEFAULT_ZONE: Final = "Europe/Paris"
# The days a request may name: a day short of each end of Python's calendar, so that a
# local day's bounds in UTC exist in every time zone.
FIRST_DAY: Final = date(1, 1, 2)
LAST_DAY: Final = date(9999, 12, 30)


def _supported(day: date) -> date:
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(
            f"{day} is at the end of the calendar: ask for a day from {FIRST_DAY} to {LAST_DAY}"
        )
    return day


Day = Annotated[date, AfterValidator(_supported)]

# A row's id in a path (an alert, a fridge alarm): what the databases' BIGINT holds, so
# that 10**30 is a 422 and never reaches a driver that cannot bind it.
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]

# Free text a person types (a reason, a note, a comment, a public message): lines of
# printable characters. NUL and other control characters, which PostgreSQL refuses in text
# or which hide in what others read, are refused with a 422.
_CONTROL = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
TypedText = Annotated[str, StringConstraints(pattern=rf"^[^{_CONTROL}]*$")]
"""A local day named in a request, inside the days the API can compute with."""


def visible_vehicle(store: Store, caller: Principal, vehicle_id: str) -> VehicleRow:
    """The vehicle, if it exists and belongs to the caller's operator; 404 otherwise
    (a vehicle of another operator is not shown to exist)."""
    for v in store.vehicles():
        if v.id == vehicle_id and caller.sees(v.operator):
            return v
    raise HTTPException(status_code=404, detail=f"no vehicle {vehicle_id!r} among yours")


def visible_vehicle_ids(store: Store, caller: Principal) -> list[str]:
    return [v.id for v in store.vehicles() if caller.sees(v.operator)]


def itinerary_zone(store: Store) -> ZoneInfo:
    """The itinerary's time zone, as the ingest recorded it (Europe/Paris, the itinerary's
    default, until it has)."""
    found = load_configuration(store)
    return ZoneInfo(found.timezone if found is not None else DEFAULT_ZONE)


def report_configuration(store: Annotated[Store, Depends(get_store)]) -> ReportConfiguration:
    found = load_configuration(store)
    if found is None:
        raise HTTPException(
            status_code=503,
            detail="the ingest has not recorded its settings in this database yet; start it",
        )
    return found


ConfigurationDep = Annotated[ReportConfiguration, Depends(report_configuration)]


def get_visit_figures(request: Request) -> VisitFigures:
    figures: VisitFigures = getattr(request.app.state, "visit_figures", NoVisitFigures())
    return figures


VisitFiguresDep = Annotated[VisitFigures, Depends(get_visit_figures)]


def checked_period(start: date, end: date, max_days: int = MAX_PERIOD_DAYS) -> None:
    if end < start:
        raise HTTPException(status_code=422, detail=f"'to' ({end}) is before 'from' ({start})")
    if (end - start).days + 1 > max_days:
        raise HTTPException(
            status_code=422,
            detail=f"the period is {(end - start).days + 1} days; ask for {max_days} at most",
        )


def utc_bounds(start: date, end: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """``[start 00:00, end + 1 day 00:00)`` local, in UTC."""
    return LocalDay.of(start, zone).start, LocalDay.of(end, zone).end


def local_today(now: datetime, zone: ZoneInfo) -> date:
    return now.astimezone(zone).date()


def last_days(last: date, count: int) -> tuple[date, date]:
    return last - timedelta(days=count - 1), last
