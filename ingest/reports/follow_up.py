"""The yearly follow-up the programme's funder asks for (*bilan annuel*): consultations by
patient profile, by month, by stop and by kind of day, continuity of care, with the
vehicle's punctuality, kilometres, CO₂e and cold-chain compliance from its funder report,
and a three-year view from the start of the service.

Counts only. The visits it counts are the funder report's (one rule, :mod:`ingest.
punctuality.figures`): so its visits held and patients seen equal the other reports'.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date

from pydantic import BaseModel, Field

from ingest.follow_up.consultations import FollowUpSettings, ImportedMonth, continuity
from ingest.local_days import MONTHS_FR
from ingest.punctuality.figures import VisitAsItStands, attendance
from ingest.reports.funder import FunderReport
from ingest.resolution import Ratio


class ProfileOut(BaseModel):
    id: str
    label: str


class ConsultationsOut(BaseModel):
    patients_seen: int = Field(description="recorded on held visits: the funder report's")
    imported: int = Field(description="from months before the system, imported")
    by_profile: dict[str, int] = Field(description="recorded and imported, by profile id")
    not_by_profile: int = Field(description="patients seen on visits counted without profiles")
    sas_referred: int
    cpam_directed: int
    visits_held: int
    visits_with_profiles: int


class MonthOut(BaseModel):
    month: str = Field(description="YYYY-MM")
    imported: bool = Field(description="the month's figures were imported, not recorded")
    patients_seen: int
    by_profile: dict[str, int]


class StopOut(BaseModel):
    stop: str
    name: str
    visits_held: int
    patients_seen: int
    by_profile: dict[str, int]


class OfferingOut(BaseModel):
    offering: str = Field(description='"general", a speciality id, or "unknown"')
    label: str
    visits_held: int
    patients_seen: int


class ContinuityStopOut(BaseModel):
    stop: str
    name: str
    usual_professional: str | None = Field(description="the id most often on board")
    visits_with_team: int
    visits_with_usual: int
    share: Ratio | None


class ContinuityOut(BaseModel):
    share: Ratio | None = Field(
        description="of the held visits whose team was recorded, the share where the stop's "
        "usual professional was on board"
    )
    visits_with_team: int
    by_stop: list[ContinuityStopOut]


class YearOut(BaseModel):
    year: int
    patients_seen: int
    imported: int
    by_profile: dict[str, int]
    complete: bool = Field(description="false for the year in progress")


class ThreeYearsOut(BaseModel):
    service_start: date | None
    years: list[YearOut]


class FollowUpReport(BaseModel):
    year: int
    operator: str
    operator_name: str
    vehicles: list[str]
    profiles: list[ProfileOut]
    consultations: ConsultationsOut
    by_month: list[MonthOut]
    by_stop: list[StopOut]
    by_offering: list[OfferingOut]
    continuity: ContinuityOut
    three_years: ThreeYearsOut
    funder: list[FunderReport] = Field(
        description="each vehicle's funder report of the year: distance, CO₂e, cold chain, "
        "visits and punctuality, as GET /reports/funder gives them"
    )
    notes: list[str]


def _held_counted(visits: Sequence[VisitAsItStands]) -> list[VisitAsItStands]:
    """The held visits with a count, by the funder report's rule (``attendance``)."""
    counted = {a.visit_id for a in attendance(list(visits)) or []}
    return [v for v in visits if v.row.id in counted]


def _profiles(
    counted: Iterable[VisitAsItStands], imported: Iterable[ImportedMonth], ids: Sequence[str]
) -> dict[str, int]:
    out = dict.fromkeys(ids, 0)
    for v in counted:
        c = v.state.consultations
        for profile, n in (c.by_profile if c else {}).items():
            out[profile] = out.get(profile, 0) + n
    for m in imported:
        out[m.profile] = out.get(m.profile, 0) + m.consultations
    return out


def year_figures(
    year: int,
    visits: Sequence[VisitAsItStands],
    imported: Sequence[ImportedMonth],
    ids: Sequence[str],
    complete: bool,
) -> YearOut:
    counted = _held_counted(visits)
    return YearOut(
        year=year,
        patients_seen=sum(v.state.patients_seen or 0 for v in counted),
        imported=sum(m.consultations for m in imported),
        by_profile=_profiles(counted, imported, ids),
        complete=complete,
    )


def follow_up_report(
    *,
    year: int,
    operator: str,
    operator_name: str,
    settings: FollowUpSettings,
    visits: Sequence[VisitAsItStands],
    imported: Sequence[ImportedMonth],
    funder: Sequence[FunderReport],
    three_years: ThreeYearsOut,
) -> FollowUpReport:
    ids = [p.id for p in settings.profiles]
    held = [v for v in visits if v.held]
    counted = _held_counted(visits)
    with_profiles = [
        v for v in counted if v.state.consultations and v.state.consultations.by_profile
    ]
    consultations = [v.state.consultations for v in counted if v.state.consultations]

    months: dict[str, list[VisitAsItStands]] = defaultdict(list)
    for v in counted:
        months[f"{v.row.day:%Y-%m}"].append(v)
    imported_months: dict[str, list[ImportedMonth]] = defaultdict(list)
    for m in imported:
        imported_months[f"{m.month:%Y-%m}"].append(m)
    by_month = [
        MonthOut(
            month=key,
            imported=key in imported_months,
            patients_seen=sum(v.state.patients_seen or 0 for v in months[key]),
            by_profile=_profiles(months[key], imported_months[key], ids),
        )
        for key in sorted(set(months) | set(imported_months))
    ]

    names = {v.row.stop: v.row.stop_name for v in visits}
    stops: dict[str, list[VisitAsItStands]] = defaultdict(list)
    for v in held:
        stops[v.row.stop].append(v)
    counted_ids = {v.row.id for v in counted}
    by_stop = [
        StopOut(
            stop=stop,
            name=names[stop],
            visits_held=len(stop_visits),
            patients_seen=sum(
                v.state.patients_seen or 0 for v in stop_visits if v.row.id in counted_ids
            ),
            by_profile=_profiles([v for v in stop_visits if v.row.id in counted_ids], [], ids),
        )
        for stop, stop_visits in sorted(stops.items(), key=lambda kv: names[kv[0]])
    ]

    offerings: dict[str, list[VisitAsItStands]] = defaultdict(list)
    for v in held:
        c = v.state.consultations
        offerings[(c.offering if c else None) or "unknown"].append(v)
    by_offering = [
        OfferingOut(
            offering=o,
            label="Non renseigné" if o == "unknown" else settings.label_of(o),
            visits_held=len(vs),
            patients_seen=sum(v.state.patients_seen or 0 for v in vs if v.row.id in counted_ids),
        )
        for o, vs in sorted(offerings.items())
    ]

    teams = continuity(
        (v.row.stop, v.state.consultations.professionals if v.state.consultations else ())
        for v in held
    )
    with_team = sum(c.visits_with_team for c in teams)
    with_usual = sum(c.with_usual for c in teams)

    notes = []
    if not counted:
        notes.append("aucune consultation saisie sur les passages de l'année")
    elif len(with_profiles) < len(counted):
        notes.append(
            f"{len(counted) - len(with_profiles)} passage(s) comptés sans répartition par profil"
        )
    if imported:
        notes.append("les mois marqués « importé » viennent des chiffres de l'opérateur")
    return FollowUpReport(
        year=year,
        operator=operator,
        operator_name=operator_name,
        vehicles=sorted({f.vehicle for f in funder}),
        profiles=[ProfileOut(id=p.id, label=p.label) for p in settings.profiles],
        consultations=ConsultationsOut(
            patients_seen=sum(v.state.patients_seen or 0 for v in counted),
            imported=sum(m.consultations for m in imported),
            by_profile=_profiles(counted, imported, ids),
            not_by_profile=sum(
                v.state.patients_seen or 0 for v in counted if v not in with_profiles
            ),
            sas_referred=sum(c.sas_referred for c in consultations),
            cpam_directed=sum(c.cpam_directed for c in consultations),
            visits_held=len(held),
            visits_with_profiles=len(with_profiles),
        ),
        by_month=by_month,
        by_stop=by_stop,
        by_offering=by_offering,
        continuity=ContinuityOut(
            share=round(with_usual / with_team, 3) if with_team else None,
            visits_with_team=with_team,
            by_stop=[
                ContinuityStopOut(
                    stop=c.stop,
                    name=names.get(c.stop, c.stop),
                    usual_professional=c.usual,
                    visits_with_team=c.visits_with_team,
                    visits_with_usual=c.with_usual,
                    share=None if c.share is None else round(c.share, 3),
                )
                for c in teams
            ],
        ),
        three_years=three_years,
        funder=list(funder),
        notes=notes,
    )


def _number(x: float | None) -> str:
    """As a French office suite reads numbers: a decimal comma."""
    if x is None:
        return ""
    return str(x).replace(".", ",")


def follow_up_csv(report: FollowUpReport) -> str:
    """The report as ``;``-separated lines with French headers, UTF-8 with a BOM so that a
    French office suite opens it as it is."""
    labels = {p.id: p.label for p in report.profiles}
    out = io.StringIO()
    out.write("\ufeff")
    w = csv.writer(out, delimiter=";", lineterminator="\r\n")
    w.writerow(["Rubrique", "Période", "Détail", "Valeur", "Importé"])
    year = str(report.year)
    c = report.consultations
    w.writerow(["Patients vus (passages)", year, "", c.patients_seen, "non"])
    w.writerow(["Consultations importées", year, "", c.imported, "oui" if c.imported else "non"])
    for pid, n in c.by_profile.items():
        w.writerow(["Consultations par profil", year, labels.get(pid, pid), n, ""])
    w.writerow(["Consultations sans profil", year, "", c.not_by_profile, "non"])
    w.writerow(["Orientées par le SAS", year, "", c.sas_referred, "non"])
    w.writerow(["Orientés vers la CPAM", year, "", c.cpam_directed, "non"])
    w.writerow(["Passages tenus", year, "", c.visits_held, "non"])
    for m in report.by_month:
        month = f"{MONTHS_FR[int(m.month[5:]) - 1]} {m.month[:4]}"
        for pid, n in m.by_profile.items():
            w.writerow(["Consultations par mois", month, labels.get(pid, pid), n, _yes(m.imported)])
    for s in report.by_stop:
        w.writerow(["Patients vus par commune", year, s.name, s.patients_seen, "non"])
        w.writerow(["Passages tenus par commune", year, s.name, s.visits_held, "non"])
    for o in report.by_offering:
        w.writerow(["Patients vus par type de journée", year, o.label, o.patients_seen, "non"])
    w.writerow(["Continuité des soins (part)", year, "", _number(report.continuity.share), "non"])
    for k in report.continuity.by_stop:
        w.writerow(["Continuité des soins par commune", year, k.name, _number(k.share), "non"])
    for y in report.three_years.years:
        total = y.patients_seen + y.imported
        w.writerow(["Vue sur trois ans", str(y.year), "patients vus et importés", total, ""])
    for f in report.funder:
        w.writerow(["Kilomètres", year, f.vehicle, _number(f.distance_km), "non"])
        w.writerow(
            ["CO₂e du puits à la roue (kg)", year, f.vehicle, _number(f.co2e.wtw_kgco2e), "non"]
        )
        days = f.coldchain.days
        w.writerow(["Jours de froid dans la plage", year, f.vehicle, days.in_range, "non"])
        w.writerow(["Jours de froid avec alarme", year, f.vehicle, days.with_alarms, "non"])
        w.writerow(["Jours de froid sans données", year, f.vehicle, days.no_data, "non"])
        if f.punctuality is not None:
            w.writerow(["Passages à l'heure", year, f.vehicle, f.punctuality.on_time, "non"])
            w.writerow(["Passages en retard", year, f.vehicle, f.punctuality.late, "non"])
    return out.getvalue()


def _yes(b: bool) -> str:
    return "oui" if b else "non"
