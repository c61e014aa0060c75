"""Reports for operators and their funders: footprint, cold chain, the funder's year."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Response

from api.auth import Principal, Role, require
from api.deps import get_store
from api.routes.coldchain import csv_response
from api.scope import (
    ConfigurationDep,
    VisitFiguresDep,
    checked_period,
    local_today,
    utc_bounds,
    visible_vehicle,
)
from ingest.coldchain import storage as coldchain_storage
from ingest.daily_records import pending_count
from ingest.footprint import storage as footprint_storage
from ingest.footprint.emissions import FactorSetMismatchError
from ingest.footprint.energy import TRACTION_CARRIER, Carrier
from ingest.reports.coldchain import ColdChainReport, coldchain_report, days_csv, filled_days
from ingest.reports.configuration import ReportConfiguration
from ingest.reports.footprint import FootprintReport, footprint_csv, footprint_report
from ingest.reports.funder import FunderReport, funder_report
from ingest.reports.pdf import coldchain_pdf, funder_pdf
from ingest.settings import FridgeRules
from ingest.store import Store, VehicleRow
from ingest.visit_figures import VisitFigures
from protocol.clock import SystemClock

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
StoreDep = Annotated[Store, Depends(get_store)]
Reader = Annotated[Principal, Depends(require(Role.FLEET_MANAGER, Role.COORDINATOR, Role.ENGINEER))]
From = Annotated[date, Query(alias="from", description="first local day")]
To = Annotated[date, Query(alias="to", description="last local day, included")]
Output = Annotated[Literal["json", "csv"], Query(alias="format")]
DocumentOutput = Annotated[Literal["json", "csv", "pdf"], Query(alias="format")]
YearOutput = Annotated[Literal["json", "pdf"], Query(alias="format")]
_clock = SystemClock()


def _footprint(
    *,
    store: Store,
    v: VehicleRow,
    start: date,
    end: date,
    configuration: ReportConfiguration,
    visits: VisitFigures,
) -> FootprintReport:
    if v.id not in configuration.footprint_vehicles:
        raise HTTPException(
            status_code=409,
            detail=f"{v.id} has no consumption in the fleet file (fuel_l_per_100km or "
            "kwh_per_100km): its footprint is not computed",
        )
    zone = ZoneInfo(configuration.timezone)
    lo, hi = utc_bounds(start, end, zone)
    try:
        return footprint_report(
            vehicle=v.id,
            operator=v.operator,
            label=v.label,
            traction_carrier=_carrier(v),
            start=start,
            end=end,
            days=footprint_storage.days(store.engine, v.id, start, end),
            configuration=configuration,
            pending_days=pending_count(store, v.id, "footprint", start, end),
            attendance=visits.attendance(v.id, lo, hi),
            counts=visits.counts(v.id, lo, hi),
        )
    except FactorSetMismatchError as exc:
        raise HTTPException(
            status_code=409,
            detail=f"{exc}: the factor set was changed and the ingest is recomputing these "
            "days; ask again shortly",
        ) from None


@router.get("/footprint", response_model=None)
def footprint(
    *,
    store: StoreDep,
    caller: Reader,
    configuration: ConfigurationDep,
    visits: VisitFiguresDep,
    vehicle: str,
    start: From,
    end: To,
    output: Output = "json",
) -> FootprintReport | Response:
    """Distance, energy and CO₂e (tank-to-wheel, well-to-tank, well-to-wheel) per day and
    in total, per km and per operating day; every CO₂e figure names its factor set.
    Avoided patient trips appear, beside the bus's emissions, where visits are recorded."""
    v = visible_vehicle(store, caller, vehicle)
    checked_period(start, end)
    report = _footprint(
        store=store, v=v, start=start, end=end, configuration=configuration, visits=visits
    )
    if output == "csv":
        return csv_response(footprint_csv(report), f"footprint-{v.id}-{start}-{end}.csv")
    return report


@router.get("/coldchain", response_model=None)
def coldchain(
    *,
    store: StoreDep,
    caller: Reader,
    configuration: ConfigurationDep,
    vehicle: str,
    start: From,
    end: To,
    output: DocumentOutput = "json",
) -> ColdChainReport | Response:
    """The fridge's daily records (min/max, time in range, excursions, alarms) and its
    alarms with acknowledgements; ``format=csv`` gives the daily log for the pharmacy
    (the alarm log is ``/api/v1/coldchain/alarms?format=csv``), ``format=pdf`` the
    logger-style sheet in French with the alarms, acknowledgements and comments."""
    v = visible_vehicle(store, caller, vehicle)
    checked_period(start, end)
    zone = ZoneInfo(configuration.timezone)
    lo, hi = utc_bounds(start, end, zone)
    report = coldchain_report(
        vehicle=v.id,
        operator=v.operator,
        label=v.label,
        start=start,
        end=end,
        zone=zone,
        rules=_fridge_rules(configuration, v.id),
        stored_days=coldchain_storage.days(store.engine, v.id, start, end),
        alarms=coldchain_storage.list_alarms(store.engine, vehicle_ids=[v.id], start=lo, end=hi),
        now=_clock.now(),
    )
    if output == "csv":
        return csv_response(days_csv(report, zone), f"fridge-{v.id}-{start}-{end}.csv")
    if output == "pdf":
        return pdf_response(coldchain_pdf(report, _clock.now()), f"fridge-{v.id}-{start}-{end}.pdf")
    return report


def _carrier(v: VehicleRow) -> Carrier:
    for traction, carrier in TRACTION_CARRIER.items():
        if traction == v.traction:
            return carrier
    raise HTTPException(status_code=500, detail=f"{v.id}: unknown traction {v.traction!r}")


def _fridge_rules(configuration: ReportConfiguration, vehicle: str) -> FridgeRules:
    rules = configuration.fridge.get(vehicle)
    if rules is None:
        raise HTTPException(
            status_code=503, detail=f"the ingest has recorded no fridge rules for {vehicle} yet"
        )
    return rules


@router.get("/funder", response_model=None)
def funder(
    *,
    store: StoreDep,
    caller: Reader,
    configuration: ConfigurationDep,
    visits: VisitFiguresDep,
    vehicle: str,
    year: Annotated[int, Query(ge=2000, le=2100)],
    output: YearOutput = "json",
) -> FunderReport | Response:
    """One vehicle's year: distance, energy, CO₂e well-to-wheel and avoided, cold-chain
    compliance, visits and punctuality (null, with a note, where not recorded);
    ``format=pdf`` as a document in French."""
    v = visible_vehicle(store, caller, vehicle)
    zone = ZoneInfo(configuration.timezone)
    start, end = date(year, 1, 1), date(year, 12, 31)
    now = _clock.now()
    if start > local_today(now, zone):
        raise HTTPException(status_code=422, detail=f"{year} has not begun")
    rules = _fridge_rules(configuration, v.id)
    lo, hi = utc_bounds(start, end, zone)
    attendance = visits.attendance(v.id, lo, hi)
    fridge_days = filled_days(
        coldchain_storage.days(store.engine, v.id, start, end), start, end, zone, now
    )
    report = funder_report(
        year=year,
        footprint=_footprint(
            store=store, v=v, start=start, end=end, configuration=configuration, visits=visits
        ),
        fridge_days=[r for r, _, _ in fridge_days],
        fridge_rules=rules,
        alarms=coldchain_storage.list_alarms(
            store.engine, vehicle_ids=[v.id], start=lo, end=hi, limit=100_000
        ),
        counts=visits.counts(v.id, lo, hi),
        patients_seen=None if attendance is None else sum(a.patients_seen for a in attendance),
        punctuality=visits.punctuality(v.id, lo, hi),
    )
    if output == "pdf":
        return pdf_response(funder_pdf(report, now), f"funder-{v.id}-{year}.pdf")
    return report


def pdf_response(body: bytes, filename: str) -> Response:
    return Response(
        body,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
