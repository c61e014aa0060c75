"""Builds the footprint and funder reports of one vehicle from the store, for the API and
for the reports sent by e-mail alike: one place says what a report holds."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from ingest.coldchain import storage as coldchain_storage
from ingest.daily_records import pending_count
from ingest.footprint import storage as footprint_storage
from ingest.footprint.emissions import FactorSetMismatchError
from ingest.footprint.energy import TRACTION_CARRIER, Carrier
from ingest.local_days import LocalDay
from ingest.reports.coldchain import ColdChainReport, coldchain_report, filled_days
from ingest.reports.configuration import ReportConfiguration
from ingest.reports.footprint import FootprintReport, footprint_report
from ingest.reports.funder import FunderReport, funder_report
from ingest.settings import FridgeRules
from ingest.store import Store, VehicleRow
from ingest.visit_figures import VisitFigures


class ReportUnavailableError(ValueError):
    """The report cannot be made now; ``status`` is the HTTP status that says why."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def bounds(start: date, end: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """``[start 00:00, end + 1 day 00:00)`` local, in UTC."""
    return LocalDay.of(start, zone).start, LocalDay.of(end, zone).end


def carrier(v: VehicleRow) -> Carrier:
    for traction, found in TRACTION_CARRIER.items():
        if traction == v.traction:
            return found
    raise ReportUnavailableError(f"{v.id}: unknown traction {v.traction!r}", 500)


def fridge_rules(configuration: ReportConfiguration, vehicle: str) -> FridgeRules:
    rules = configuration.fridge.get(vehicle)
    if rules is None:
        raise ReportUnavailableError(
            f"the ingest has recorded no fridge rules for {vehicle} yet", 503
        )
    return rules


def footprint_of(
    *,
    store: Store,
    v: VehicleRow,
    start: date,
    end: date,
    configuration: ReportConfiguration,
    visits: VisitFigures,
) -> FootprintReport:
    if v.id not in configuration.footprint_vehicles:
        raise ReportUnavailableError(
            f"{v.id} has no consumption in the fleet file (fuel_l_per_100km or "
            "kwh_per_100km): its footprint is not computed",
            409,
        )
    zone = ZoneInfo(configuration.timezone)
    lo, hi = bounds(start, end, zone)
    try:
        return footprint_report(
            vehicle=v.id,
            operator=v.operator,
            label=v.label,
            traction_carrier=carrier(v),
            start=start,
            end=end,
            days=footprint_storage.days(store.engine, v.id, start, end),
            configuration=configuration,
            pending_days=pending_count(store, v.id, "footprint", start, end),
            attendance=visits.attendance(v.id, lo, hi),
            counts=visits.counts(v.id, lo, hi),
        )
    except FactorSetMismatchError as exc:
        raise ReportUnavailableError(
            f"{exc}: the factor set was changed and the ingest is recomputing these "
            "days; ask again shortly",
            409,
        ) from None


def funder_of(
    *,
    store: Store,
    v: VehicleRow,
    year: int,
    configuration: ReportConfiguration,
    visits: VisitFigures,
    now: datetime,
) -> FunderReport:
    zone = ZoneInfo(configuration.timezone)
    start, end = date(year, 1, 1), date(year, 12, 31)
    rules = fridge_rules(configuration, v.id)
    lo, hi = bounds(start, end, zone)
    attendance = visits.attendance(v.id, lo, hi)
    fridge_days = filled_days(
        coldchain_storage.days(store.engine, v.id, start, end), start, end, zone, now
    )
    return funder_report(
        year=year,
        footprint=footprint_of(
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


def coldchain_of(
    *,
    store: Store,
    vehicle: str,
    operator: str,
    label: str,
    start: date,
    end: date,
    zone: ZoneInfo,
    rules: FridgeRules,
    now: datetime,
) -> ColdChainReport:
    """The fridge's days from ``start`` to ``end`` and every alarm touching them: the same
    report for the API, its CSV and PDF, and the monthly sheet mailed."""
    lo, hi = bounds(start, end, zone)
    return coldchain_report(
        vehicle=vehicle,
        operator=operator,
        label=label,
        start=start,
        end=end,
        zone=zone,
        rules=rules,
        stored_days=coldchain_storage.days(store.engine, vehicle, start, end),
        alarms=coldchain_storage.list_alarms(
            store.engine, vehicle_ids=[vehicle], start=lo, end=hi, limit=100_000
        ),
        now=now,
    )
