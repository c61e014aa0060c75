"""Reports for operators and their funders: footprint, cold chain, the funder's year."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from api.auth import Principal, Role, require
from api.deps import ClockDep, get_store
from api.routes.coldchain import csv_response
from api.scope import (
    ConfigurationDep,
    Day,
    VisitFiguresDep,
    checked_period,
    local_today,
    visible_vehicle,
)
from ingest.follow_up.consultations import FollowUpSettings
from ingest.reports import documents
from ingest.reports.coldchain import ColdChainReport, days_csv
from ingest.reports.configuration import ReportConfiguration
from ingest.reports.follow_up import FollowUpReport, follow_up_csv
from ingest.reports.footprint import FootprintReport, footprint_csv
from ingest.reports.funder import FunderReport, funder_csv
from ingest.reports.pdf import coldchain_pdf, follow_up_pdf, funder_pdf
from ingest.services import follow_up as follow_up_service
from ingest.settings import FridgeRules
from ingest.store import Store, VehicleRow
from ingest.visit_figures import VisitFigures

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
StoreDep = Annotated[Store, Depends(get_store)]
Reader = Annotated[Principal, Depends(require(Role.FLEET_MANAGER, Role.COORDINATOR, Role.ENGINEER))]
From = Annotated[Day, Query(alias="from", description="first local day")]
To = Annotated[Day, Query(alias="to", description="last local day, included")]
Output = Annotated[
    Literal["json", "csv"] | None,
    Query(alias="format", description="json or csv; or send Accept: text/csv"),
]
DocumentOutput = Annotated[
    Literal["json", "csv", "pdf"] | None,
    Query(alias="format", description="json, csv or pdf; or send Accept: text/csv"),
]


def wants_csv(request: Request, output: str | None) -> bool:
    """``format=csv``, or no ``format`` and an ``Accept`` header asking for CSV."""
    if output is not None:
        return output == "csv"
    return "text/csv" in request.headers.get("accept", "")


def _footprint(
    *,
    store: Store,
    v: VehicleRow,
    start: date,
    end: date,
    configuration: ReportConfiguration,
    visits: VisitFigures,
) -> FootprintReport:
    try:
        return documents.footprint_of(
            store=store, v=v, start=start, end=end, configuration=configuration, visits=visits
        )
    except documents.ReportUnavailableError as exc:
        raise HTTPException(status_code=exc.status, detail=str(exc)) from None


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
    output: Output = None,
    request: Request,
) -> FootprintReport | Response:
    """Distance, energy and CO₂e (tank-to-wheel, well-to-tank, well-to-wheel) per day and
    in total, per km and per operating day; every CO₂e figure names its factor set.
    Avoided patient trips appear, beside the bus's emissions, where visits are recorded."""
    v = visible_vehicle(store, caller, vehicle)
    checked_period(start, end)
    report = _footprint(
        store=store, v=v, start=start, end=end, configuration=configuration, visits=visits
    )
    if wants_csv(request, output):
        return csv_response(footprint_csv(report), f"footprint-{v.id}-{start}-{end}.csv")
    return report


@router.get("/coldchain", response_model=None)
def coldchain(
    *,
    store: StoreDep,
    clock: ClockDep,
    caller: Reader,
    configuration: ConfigurationDep,
    vehicle: str,
    start: From,
    end: To,
    output: DocumentOutput = None,
    request: Request,
) -> ColdChainReport | Response:
    """The fridge's daily records (min/max, time in range, excursions, alarms) and its
    alarms with acknowledgements; ``format=csv`` gives the daily log for the pharmacy
    (the alarm log is ``/api/v1/coldchain/alarms?format=csv``), ``format=pdf`` the
    logger-style sheet in French with the alarms, acknowledgements and comments."""
    v = visible_vehicle(store, caller, vehicle)
    checked_period(start, end)
    zone = ZoneInfo(configuration.timezone)
    report = documents.coldchain_of(
        store=store,
        vehicle=v.id,
        operator=v.operator,
        label=v.label,
        start=start,
        end=end,
        zone=zone,
        rules=_fridge_rules(configuration, v.id),
        now=clock.now(),
    )
    if wants_csv(request, output):
        return csv_response(days_csv(report, zone), f"fridge-{v.id}-{start}-{end}.csv")
    if output == "pdf":
        return pdf_response(coldchain_pdf(report, clock.now()), f"fridge-{v.id}-{start}-{end}.pdf")
    return report


def _fridge_rules(configuration: ReportConfiguration, vehicle: str) -> FridgeRules:
    try:
        return documents.fridge_rules(configuration, vehicle)
    except documents.ReportUnavailableError as exc:
        raise HTTPException(status_code=exc.status, detail=str(exc)) from None


# The funder's reports: the staff, and the programme's funder (aggregates only).
FollowUpReader = Annotated[
    Principal,
    Depends(require(Role.FLEET_MANAGER, Role.COORDINATOR, Role.ENGINEER, Role.FUNDER)),
]


@router.get("/funder", response_model=None)
def funder(
    *,
    store: StoreDep,
    clock: ClockDep,
    caller: FollowUpReader,
    configuration: ConfigurationDep,
    visits: VisitFiguresDep,
    vehicle: str,
    year: Annotated[int, Query(ge=2000, le=2100)],
    output: DocumentOutput = None,
    request: Request,
) -> FunderReport | Response:
    """One vehicle's year: distance, energy, CO₂e well-to-wheel and avoided, cold-chain
    compliance, visits and punctuality (null, with a note, where not recorded);
    ``format=csv`` (or ``Accept: text/csv``) gives it as ``figure,value`` lines,
    ``format=pdf`` as a document in French."""
    v = visible_vehicle(store, caller, vehicle)
    zone = ZoneInfo(configuration.timezone)
    now = clock.now()
    if date(year, 1, 1) > local_today(now, zone):
        raise HTTPException(status_code=422, detail=f"{year} has not begun")
    try:
        report = documents.funder_of(
            store=store, v=v, year=year, configuration=configuration, visits=visits, now=now
        )
    except documents.ReportUnavailableError as exc:
        raise HTTPException(status_code=exc.status, detail=str(exc)) from None
    if output == "pdf":
        return pdf_response(funder_pdf(report, now), f"funder-{v.id}-{year}.pdf")
    if wants_csv(request, output):
        return csv_response(funder_csv(report), f"funder-{v.id}-{year}.csv")
    return report


@router.get("/follow-up", response_model=None)
def follow_up(
    *,
    store: StoreDep,
    clock: ClockDep,
    caller: FollowUpReader,
    configuration: ConfigurationDep,
    visits: VisitFiguresDep,
    year: Annotated[int, Query(ge=2000, le=2100)],
    vehicle: Annotated[str | None, Query(max_length=64)] = None,
    operator: Annotated[str | None, Query(max_length=64)] = None,
    output: DocumentOutput = None,
    request: Request,
) -> FollowUpReport | Response:
    """The funder's yearly follow-up of one vehicle (``vehicle``) or of an operator's fleet
    (``operator``): consultations by patient profile, by month, by commune and by kind of
    day, SAS referrals and patients directed to the CPAM, continuity of care, each
    vehicle's funder figures (distance, CO₂e, cold chain, visits, punctuality) and a
    three-year view from the start of the service. Counts only. ``format=csv`` gives a
    file a French office suite opens (``;``, UTF-8 with BOM, French headers),
    ``format=pdf`` a document in French."""
    now = clock.now()
    report = follow_up_service.follow_up(
        store,
        caller,
        year=year,
        vehicle=vehicle,
        operator=operator,
        configuration=configuration,
        visit_figures=visits,
        now=now,
    )
    name = f"suivi-{vehicle or operator}-{year}"
    if output == "pdf":
        return pdf_response(follow_up_pdf(report, now), f"{name}.pdf")
    if wants_csv(request, output):
        return csv_response(follow_up_csv(report), f"{name}.csv")
    return report


@router.get("/follow-up/settings")
def follow_up_settings(
    store: StoreDep, caller: FollowUpReader, configuration: ConfigurationDep
) -> dict[str, FollowUpSettings]:
    """Per operator of the caller: the patient profiles a visit's consultations are counted
    by, the specialities offered beside general practice, and the professionals' ids."""
    return follow_up_service.settings_of(store, caller, configuration)


def pdf_response(body: bytes, filename: str) -> Response:
    return Response(
        body,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
