"""The reports as PDF documents, in French: the monthly cold-chain sheet of a fridge (a
logger's page: each day's minimum and maximum, time in range, the alarms with who
acknowledged them and why) and the funder's yearly report.

Drawn from the same report objects the API returns, so the figures are the API's,
rounded as printed. ReportLab needs no system library; its built-in Helvetica covers
French (Latin-1), so no font file is shipped.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Final
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from ingest.local_days import MONTHS_FR
from ingest.reports.coldchain import ColdChainReport
from ingest.reports.follow_up import FollowUpReport
from ingest.reports.funder import FunderReport

STATUS_FR: Final = {
    "ok": "conforme",
    "incomplete": "incomplet",
    "no_data": "sans données",
    "warning": "alerte",
    "alarm": "alarme",
}
ALARM_FR: Final = {"heat": "chaleur", "freeze": "gel", "early_warning": "alerte précoce"}


def number(x: float | None, digits: int = 1) -> str:
    """A figure as printed: French decimal comma, "–" when unknown."""
    if x is None:
        return "–"
    return f"{x:.{digits}f}".replace(".", ",")


def hours_minutes(minutes: float) -> str:
    total = round(minutes)
    return f"{total // 60} h {total % 60:02d}"


def day_fr(d: date) -> str:
    return d.strftime("%d/%m/%Y")


def local_fr(t: datetime | None, zone: ZoneInfo) -> str:
    return "–" if t is None else t.astimezone(zone).strftime("%d/%m/%Y %H:%M")


def period_fr(start: date, end: date) -> str:
    if start.day == 1 and start.month == end.month and start.year == end.year:
        return f"{MONTHS_FR[start.month - 1]} {start.year}"
    return f"du {day_fr(start)} au {day_fr(end)}"


_STYLES = getSampleStyleSheet()
_COMMENT = ParagraphStyle("comment", parent=_STYLES["BodyText"], fontSize=7, leading=8.5)
# A row of a table must fit on one page: a longer comment is cut there.
COMMENT_MAX_CHARS: Final = 1500


def _capped(comment: str | None) -> str:
    text = comment or ""
    return text if len(text) <= COMMENT_MAX_CHARS else text[: COMMENT_MAX_CHARS - 1] + "…"


def _p(text: str, style: str = "BodyText") -> Paragraph:
    return Paragraph(escape(text), _STYLES[style])


def _table(rows: Sequence[Sequence[Any]], widths: Sequence[float] | None = None) -> Table:
    table = Table([list(r) for r in rows], colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8),
                ("FONT", (0, 1), (-1, -1), "Helvetica", 8),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef4")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def _build(story: list[Any], title: str, pagesize: tuple[float, float] = A4) -> bytes:
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=pagesize,
        title=title,
        author="Médicobus",
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        lang="fr-FR",
    )
    doc.build(story)
    return out.getvalue()


def coldchain_pdf(report: ColdChainReport, generated_at: datetime) -> bytes:
    zone = ZoneInfo(report.timezone)
    r = report.rules
    s = report.summary
    story: list[Any] = [
        _p(
            f"Relevé de température du réfrigérateur – {period_fr(report.start, report.end)}",
            "Title",
        ),
        _p(f"Bus : {report.label} ({report.vehicle}) – opérateur {report.operator}"),
        _p(
            f"Plage : {number(r.low_c)} à {number(r.high_c)} °C. Alarme chaleur au-dessus de "
            f"{number(r.heat_alarm_above_c)} °C pendant {number(r.heat_alarm_after_h)} h ; "
            f"alarme gel à {number(r.freeze_alarm_at_or_below_c)} °C ou moins pendant "
            f"{number(r.freeze_alarm_after_min, 0)} min. Heures locales ({report.timezone})."
        ),
        _p(
            f"Jours : {s.days} ; conformes {s.in_range} ; incomplets {s.incomplete} ; "
            f"sans données {s.no_data} ; avec alerte {s.with_warnings} ; "
            f"avec alarme {s.with_alarms}."
        ),
        Spacer(1, 4 * mm),
    ]
    rows: list[list[str]] = [
        [
            "Date",
            "Min °C",
            "Max °C",
            "Dans la plage",
            "Au-dessus",
            "En dessous",
            "Sans données",
            "Relevés",
            "Excursions",
            "État",
        ]
    ]
    for d in report.days:
        rows.append(
            [
                day_fr(d.date),
                number(d.min_c),
                number(d.max_c),
                hours_minutes(d.in_range_min),
                hours_minutes(d.above_min),
                hours_minutes(d.below_min),
                hours_minutes(d.no_data_min),
                str(d.samples),
                str(d.excursions),
                STATUS_FR[d.status] + ("" if d.complete else " (en cours)"),
            ]
        )
    story.append(_table(rows))
    story.extend([Spacer(1, 5 * mm), _p("Alarmes", "Heading2")])
    if not report.alarms:
        story.append(_p("Aucune alarme sur la période."))
    else:
        alarm_rows: list[list[Any]] = [
            [
                "N°",
                "Alarme",
                "Début",
                "Fin",
                "Durée",
                "Pic °C",
                "Acquittée par",
                "Le",
                "Commentaire",
            ]
        ]
        for a in report.alarms:
            ack = a.acknowledged
            alarm_rows.append(
                [
                    str(a.id),
                    ALARM_FR.get(a.kind, a.kind) + (" (en cours)" if a.ongoing else ""),
                    local_fr(a.start, zone),
                    local_fr(a.end, zone),
                    hours_minutes(a.duration_min),
                    number(a.peak_c),
                    ack.by if ack else "non acquittée",
                    local_fr(ack.at if ack else None, zone),
                    Paragraph(escape(_capped(ack.comment)) if ack else "", _COMMENT),
                ]
            )
        widths = [w * mm for w in (12, 35, 32, 32, 18, 16, 35, 32, 61)]
        story.append(_table(alarm_rows, widths))
    story.extend(
        [
            Spacer(1, 5 * mm),
            _p(f"Édité le {local_fr(generated_at, zone)}. Visa du pharmacien : ____________"),
        ]
    )
    return _build(story, f"Chaîne du froid {report.vehicle}", landscape(A4))


def funder_pdf(report: FunderReport, generated_at: datetime) -> bytes:
    zone = ZoneInfo(report.timezone)
    cc = report.coldchain
    e = report.energy
    rows: list[list[str]] = [
        ["Indicateur", "Valeur"],
        ["Distance parcourue", f"{number(report.distance_km)} km"],
        ["Jours d'activité", str(report.operating_days)],
        ["Énergie de traction", f"{number(e.traction.quantity)} {e.traction.unit}"],
        ["Batterie auxiliaire consommée", f"{number(e.auxiliary.drawn_kwh)} kWh"],
        ["Production solaire", "–" if e.solar_kwh is None else f"{number(e.solar_kwh)} kWh"],
        ["CO2e du puits à la roue", f"{number(report.co2e.wtw_kgco2e)} kg"],
        ["  dont combustion (réservoir à la roue)", f"{number(report.co2e.ttw_kgco2e)} kg"],
        ["  dont amont (puits au réservoir)", f"{number(report.co2e.wtt_kgco2e)} kg"],
        [
            "Facteurs d'émission",
            f"{report.co2e.factor_set.id} v{report.co2e.factor_set.version}",
        ],
    ]
    if report.avoided is not None:
        rows.append(["Trajets en voiture évités", f"{number(report.avoided.car_km)} km"])
        rows.append(["CO2e évité", f"{number(report.avoided.kgco2e)} kg"])
    if report.balance is not None:
        rows.append(["Bilan net (bus moins évité)", f"{number(report.balance.net_kgco2e)} kg"])
    rows.extend(
        [
            ["Chaîne du froid : jours conformes", f"{cc.days.in_range} / {cc.days.days}"],
            ["Chaîne du froid : jours sans données", str(cc.days.no_data)],
            ["Chaîne du froid : jours avec alarme", str(cc.days.with_alarms)],
            [
                "Alarmes (chaleur / gel / alerte précoce)",
                f"{cc.alarms.get('heat', 0)} / {cc.alarms.get('freeze', 0)} / "
                f"{cc.alarms.get('early_warning', 0)}",
            ],
            [
                "Alarmes acquittées / non acquittées",
                f"{cc.alarms_acknowledged} / {cc.alarms_unacknowledged}",
            ],
        ]
    )
    v = report.visits
    rows.append(
        [
            "Permanences prévues / tenues / annulées",
            "–" if v is None else f"{v.scheduled} / {v.held} / {v.cancelled}",
        ]
    )
    rows.append(
        ["Patients reçus", "–" if report.patients_seen is None else str(report.patients_seen)]
    )
    p = report.punctuality
    rows.append(
        [
            "Ponctualité (en avance / à l'heure / en retard / manquées)",
            "–" if p is None else f"{p.early} / {p.on_time} / {p.late} / {p.missed}",
        ]
    )
    story: list[Any] = [
        _p(f"Rapport annuel {report.year} – {report.label}", "Title"),
        _p(
            f"Bus {report.vehicle}, opérateur {report.operator}, du {day_fr(report.start)} "
            f"au {day_fr(report.end)}."
        ),
        Spacer(1, 4 * mm),
        _table(rows, widths=[110 * mm, 60 * mm]),
    ]
    if report.notes:
        story.extend([Spacer(1, 4 * mm), _p("Remarques", "Heading2")])
        story.extend(_p(f"• {n}") for n in report.notes)
    story.extend([Spacer(1, 5 * mm), _p(f"Édité le {local_fr(generated_at, zone)}.")])
    return _build(story, f"Rapport annuel {report.year} {report.vehicle}")


def follow_up_pdf(report: FollowUpReport, generated_at: datetime) -> bytes:
    zone = ZoneInfo(report.funder[0].timezone if report.funder else "Europe/Paris")
    labels = {p.id: p.label for p in report.profiles}
    c = report.consultations
    summary = [
        ["Indicateur", "Valeur"],
        ["Patients reçus (saisis sur les passages)", str(c.patients_seen)],
        ["Consultations importées (avant le système)", str(c.imported)],
        *([f"  {labels.get(pid, pid)}", str(n)] for pid, n in c.by_profile.items()),
        ["  sans répartition par profil", str(c.not_by_profile)],
        ["Consultations demandées par le SAS", str(c.sas_referred)],
        ["Patients orientés vers la CPAM", str(c.cpam_directed)],
        ["Passages tenus", str(c.visits_held)],
        [
            "Continuité des soins (même médecin à l'arrêt)",
            "–"
            if report.continuity.share is None
            else f"{number(report.continuity.share * 100)} %",
        ],
    ]
    profile_ids = list(c.by_profile)
    # Profiles' labels are long: wrapped in their columns so that the table fits the page.
    profile_mm = (186 - 30 - 18) / max(len(profile_ids), 1)
    months = [
        ["Mois", *(_p(labels.get(pid, pid)) for pid in profile_ids), "Importé"],
        *(
            [
                f"{MONTHS_FR[int(m.month[5:]) - 1]} {m.month[:4]}",
                *(str(m.by_profile.get(pid, 0)) for pid in profile_ids),
                "oui" if m.imported else "non",
            ]
            for m in report.by_month
        ),
    ]
    stops = [
        ["Commune", "Passages tenus", "Patients reçus"],
        *([s.name, str(s.visits_held), str(s.patients_seen)] for s in report.by_stop),
    ]
    offerings = [
        ["Type de journée", "Passages tenus", "Patients reçus"],
        *([o.label, str(o.visits_held), str(o.patients_seen)] for o in report.by_offering),
    ]
    years = [
        ["Année", "Patients reçus", "Importées", "Année complète"],
        *(
            [str(y.year), str(y.patients_seen), str(y.imported), "oui" if y.complete else "non"]
            for y in report.three_years.years
        ),
    ]
    vehicles = [
        ["Bus", "Distance", "CO2e (puits à la roue)", "Jours de froid conformes", "À l'heure"],
        *(
            [
                f.vehicle,
                f"{number(f.distance_km)} km",
                f"{number(f.co2e.wtw_kgco2e)} kg",
                f"{f.coldchain.days.in_range} / {f.coldchain.days.days}",
                "–" if f.punctuality is None else str(f.punctuality.on_time),
            ]
            for f in report.funder
        ),
    ]
    story: list[Any] = [
        _p(f"Bilan annuel {report.year} – {report.operator_name}", "Title"),
        _p(f"Bus : {', '.join(report.vehicles)}. Décomptes anonymes, aucune donnée de patient."),
        Spacer(1, 4 * mm),
        _table(summary, widths=[120 * mm, 50 * mm]),
    ]
    month_widths = [30 * mm, *([profile_mm * mm] * len(profile_ids)), 18 * mm]
    for title, rows, widths in (
        ("Consultations par mois et par profil", months, month_widths),
        ("Par commune", stops, None),
        ("Par type de journée", offerings, None),
        ("Vue sur trois ans", years, None),
        ("Par bus : distance, émissions, chaîne du froid, ponctualité", vehicles, None),
    ):
        story.extend([Spacer(1, 4 * mm), _p(title, "Heading2"), _table(rows, widths)])
    if report.notes:
        story.extend([Spacer(1, 4 * mm), _p("Remarques", "Heading2")])
        story.extend(_p(f"• {n}") for n in report.notes)
    story.extend([Spacer(1, 5 * mm), _p(f"Édité le {local_fr(generated_at, zone)}.")])
    return _build(story, f"Bilan annuel {report.year} {report.operator}")
