"""The yearly follow-up of a vehicle or of an operator's fleet."""

from __future__ import annotations

import csv
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from ingest.follow_up import storage
from ingest.follow_up.consultations import FollowUpSettings, ImportedMonth
from ingest.punctuality import visit_rows
from ingest.punctuality.figures import VisitAsItStands, counted_visits
from ingest.reports import documents
from ingest.reports.configuration import ReportConfiguration
from ingest.reports.follow_up import FollowUpReport, ThreeYearsOut, follow_up_report, year_figures
from ingest.reports.funder import FunderReport
from ingest.services.common import NotFoundError, RefusedError, Viewer, reading, unit_of_work
from ingest.store import Store, VehicleRow
from ingest.visit_figures import VisitFigures

EVALUATION_YEARS = 3


def _fleet(
    store: Store, viewer: Viewer, vehicle: str | None, operator: str | None
) -> tuple[str, list[VehicleRow]]:
    if (vehicle is None) == (operator is None):
        raise RefusedError("name a vehicle or an operator (one of them)")
    mine = [v for v in store.vehicles() if viewer.sees(v.operator)]
    if vehicle is not None:
        found = [v for v in mine if v.id == vehicle]
        if not found:
            raise NotFoundError(f"no vehicle {vehicle!r} among yours")
        return found[0].operator, found
    found = [v for v in mine if v.operator == operator]
    if not found:
        raise NotFoundError(f"no operator {operator!r} among yours")
    assert operator is not None
    return operator, found


def _visits(
    store: Store, vehicles: set[str], first: date, last: date, now: datetime
) -> tuple[list[VisitAsItStands], list[ImportedMonth]]:
    with reading(store) as conn:
        rows = [r for r in visit_rows.visits_between(conn, first, last) if r.vehicle in vehicles]
        changes = visit_rows.changes(conn, (r.id for r in rows))
        imported = storage.imported_months(conn, vehicles, first, last)
    return counted_visits(rows, changes, now), imported


def follow_up(
    store: Store,
    viewer: Viewer,
    *,
    year: int,
    vehicle: str | None,
    operator: str | None,
    configuration: ReportConfiguration,
    visit_figures: VisitFigures,
    now: datetime,
) -> FollowUpReport:
    """The follow-up of ``year`` for one vehicle or for every vehicle of an operator."""
    owner, fleet = _fleet(store, viewer, vehicle, operator)
    ids = {v.id for v in fleet}
    settings = configuration.follow_up_of(owner)
    today = now.astimezone(ZoneInfo(configuration.timezone)).date()
    if year > today.year:
        raise RefusedError(f"{year} has not begun")
    visits, imported = _visits(store, ids, date(year, 1, 1), date(year, 12, 31), now)
    funder: list[FunderReport] = []
    notes: list[str] = []
    for v in fleet:
        try:
            funder.append(
                documents.funder_of(
                    store=store,
                    v=v,
                    year=year,
                    configuration=configuration,
                    visits=visit_figures,
                    now=now,
                )
            )
        except documents.ReportUnavailableError as exc:
            notes.append(f"{v.id} : bilan du financeur indisponible ({exc})")
    starts = [configuration.service_start[v] for v in ids if v in configuration.service_start]
    first_year = min(starts).year if starts else year
    profile_ids = [p.id for p in settings.profiles]
    years = []
    for y in range(first_year, min(first_year + EVALUATION_YEARS, today.year + 1)):
        if y == year:
            these, these_imported = visits, imported
        else:
            these, these_imported = _visits(store, ids, date(y, 1, 1), date(y, 12, 31), now)
        years.append(year_figures(y, these, these_imported, profile_ids, y < today.year))
    report = follow_up_report(
        year=year,
        operator=owner,
        operator_name=configuration.operators.get(owner, owner),
        settings=settings,
        visits=visits,
        imported=imported,
        funder=funder,
        three_years=ThreeYearsOut(service_start=min(starts) if starts else None, years=years),
    )
    report.notes.extend(notes)
    report.vehicles = sorted(ids)
    return report


IMPORT_COLUMNS = ("vehicule", "mois", "profil", "consultations")
MAX_IMPORTED = 100_000
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def _month(text: str, today: date) -> date:
    found = _MONTH.fullmatch(text)
    if found is None:
        raise ValueError(f"month {text!r} is not YYYY-MM")
    year, month = int(found[1]), int(found[2])
    if not 1 <= month <= 12 or not year >= 2000:
        raise ValueError(f"month {text!r} does not exist or is before 2000")
    first = date(year, month, 1)
    if first > today.replace(day=1):
        raise ValueError(f"month {text} has not begun")
    return first


def _count(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 6 or int(text) > MAX_IMPORTED:
        raise ValueError(f"consultations {text!r} is not a count from 0 to {MAX_IMPORTED}")
    return int(text)


def import_months(
    store: Store, configuration: ReportConfiguration, text: str, source: str, now: datetime
) -> list[ImportedMonth]:
    """Import the operator's monthly consultations by profile from before the system: a
    CSV (``;`` or ``,``) with the columns ``vehicule;mois;profil;consultations``. All or
    nothing: any line refused refuses the file, with every reason and its line. A month
    whose visits already have counts in the system is refused (it would count twice)."""
    today = now.astimezone(ZoneInfo(configuration.timezone)).date()
    lines = text.lstrip("\ufeff").splitlines()
    if not lines:
        raise RefusedError("the file is empty")
    dialect = ";" if lines[0].count(";") >= lines[0].count(",") else ","
    reader = csv.reader(lines, delimiter=dialect)
    header = [h.strip().lower() for h in next(reader)]
    if tuple(header) != IMPORT_COLUMNS:
        raise RefusedError(
            f"the first line must name the columns {';'.join(IMPORT_COLUMNS)} (found "
            f"{';'.join(header)[:200]})"
        )
    operators = {v.id: v.operator for v in store.vehicles()}
    found: dict[tuple[str, date, str], ImportedMonth] = {}
    errors: list[str] = []
    for number, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        try:
            if len(cells) != len(IMPORT_COLUMNS):
                raise ValueError(f"{len(cells)} columns, not {len(IMPORT_COLUMNS)}")
            vehicle, month_text, profile, count_text = (c.strip() for c in cells)
            if vehicle not in operators:
                raise ValueError(f"unknown vehicle {vehicle[:64]!r}")
            profiles = [p.id for p in configuration.follow_up_of(operators[vehicle]).profiles]
            if profile not in profiles:
                raise ValueError(
                    f"unknown profile {profile[:64]!r} (the operator's: {', '.join(profiles)})"
                )
            key = (vehicle, _month(month_text, today), profile)
            if key in found:
                raise ValueError(f"{vehicle} {month_text} {profile} given twice")
            found[key] = ImportedMonth(*key, _count(count_text))
        except ValueError as exc:
            errors.append(f"line {number}: {exc}")
    if errors:
        raise RefusedError("nothing imported: " + "; ".join(errors[:20]))
    months = list(found.values())
    recorded = _months_with_counts(store, months, now)
    if recorded:
        raise RefusedError(
            "nothing imported: the system already has counts for "
            + ", ".join(f"{v} {m:%Y-%m}" for v, m in sorted(recorded))
        )
    with unit_of_work(store) as conn:
        storage.save_imported(conn, months, source[:200], now)
    return months


def _months_with_counts(
    store: Store, months: list[ImportedMonth], now: datetime
) -> set[tuple[str, date]]:
    if not months:
        return set()
    first = min(m.month for m in months)
    last = max(m.month for m in months)
    last_day = date(last.year + (last.month == 12), last.month % 12 + 1, 1) - timedelta(days=1)
    asked = {(m.vehicle, m.month) for m in months}
    visits, _ = _visits(store, {m.vehicle for m in months}, first, last_day, now)
    return {
        (v.row.vehicle, v.row.day.replace(day=1))
        for v in visits
        if v.state.patients_seen is not None and (v.row.vehicle, v.row.day.replace(day=1)) in asked
    }


def settings_of(
    store: Store, viewer: Viewer, configuration: ReportConfiguration
) -> dict[str, FollowUpSettings]:
    """Each of the viewer's operators' follow-up settings: what a visit's counts are
    entered against (profiles, specialities, professionals' ids)."""
    operators = sorted({v.operator for v in store.vehicles() if viewer.sees(v.operator)})
    return {op: configuration.follow_up_of(op) for op in operators}
