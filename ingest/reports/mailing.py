"""Sends the monthly cold-chain sheets and the funder's yearly reports (PDF) by e-mail on
the schedule of the settings.

Each document is queued once per recipient under a key naming the report, the vehicle
and the period, in the delivery queue the alerts use; the latest period that is due is
the one sent, so a first start does not send a backlog of past periods.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ingest.alerts import storage
from ingest.alerts.notify_settings import NotificationSettings, ReportSchedule
from ingest.local_days import MONTHS_FR
from ingest.reports.coldchain import ColdChainReport
from ingest.reports.configuration import load_configuration
from ingest.reports.documents import ReportUnavailableError, coldchain_of, funder_of
from ingest.reports.funder import FunderReport
from ingest.reports.pdf import coldchain_pdf, funder_pdf, number
from ingest.store import Store
from ingest.tables.intake import vehicles
from ingest.visit_figures import NoVisitFigures, VisitFigures
from protocol.clock import Clock

log = logging.getLogger(__name__)


def due_month(local_now: datetime, day: int, hour: int) -> tuple[date, date] | None:
    """(first, last day) of the latest month whose sheet is due: the previous month from
    ``day`` at ``hour``, the one before until then; None before the calendar allows."""
    first_of_this = local_now.date().replace(day=1)
    months_back = 1 if (local_now.day, local_now.hour) >= (day, hour) else 2
    end = first_of_this
    for _ in range(months_back):
        if end.year == 1 and end.month == 1:
            return None
        end = (end - timedelta(days=1)).replace(day=1)
    start = end
    last = (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return start, last


def due_year(local_now: datetime, day: int, hour: int) -> int | None:
    """The latest year whose report is due: the previous one from 1 January's ``day`` at
    ``hour``, the one before until then; None before the calendar allows."""
    back = 1 if (local_now.month, local_now.day, local_now.hour) >= (1, day, hour) else 2
    year = local_now.year - back
    return year if year >= 1 else None


def _key(report: str, vehicle: str, period: str, address: str) -> str:
    digest = hashlib.sha256(address.encode()).hexdigest()[:16]
    return f"report-{report}-{vehicle}-{period}-email-{digest}"


def funder_text(report: FunderReport) -> str:
    cc = report.coldchain
    return "\n".join(
        [
            "Bonjour,",
            "",
            f"Veuillez trouver ci-joint le rapport annuel {report.year} du bus "
            f"{report.label} ({report.vehicle}).",
            f"Distance parcourue : {number(report.distance_km)} km ; jours d'activité : "
            f"{report.operating_days} ; CO2e du puits à la roue : "
            f"{number(report.co2e.wtw_kgco2e)} kg.",
            f"Chaîne du froid : {cc.days.in_range} jours conformes sur {cc.days.days}.",
            "",
            "Médicobus",
        ]
    )


def summary_text(report: ColdChainReport) -> str:
    s = report.summary
    open_alarms = sum(1 for a in report.alarms if a.acknowledged is None)
    month = f"{MONTHS_FR[report.start.month - 1]} {report.start.year}"
    return "\n".join(
        [
            "Bonjour,",
            "",
            f"Veuillez trouver ci-joint le relevé de température du réfrigérateur du bus "
            f"{report.label} ({report.vehicle}) pour {month}.",
            f"Jours : {s.days} ; conformes {s.in_range} ; incomplets {s.incomplete} ; "
            f"sans données {s.no_data} ; avec alerte {s.with_warnings} ; "
            f"avec alarme {s.with_alarms}.",
            f"Alarmes : {len(report.alarms)}, dont {open_alarms} non acquittée(s).",
            "",
            "Médicobus",
        ]
    )


class ReportMailer:
    def __init__(
        self,
        store: Store,
        settings: NotificationSettings,
        clock: Clock,
        *,
        visits: VisitFigures | None = None,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._visits: VisitFigures = visits or NoVisitFigures()
        self._unavailable: set[tuple[str, int]] = set()
        self._settings = settings
        self._clock = clock
        self._on_queued = on_queued
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def mail_due(self) -> int:
        """Queue every sheet that is due and not yet queued; returns how many messages."""
        configuration = load_configuration(self._store)
        if configuration is None:
            return 0
        zone = ZoneInfo(configuration.timezone)
        now = self._clock.now()
        queued = 0
        local = now.astimezone(zone)
        for schedule in self._settings.reports:
            if schedule.report == "funder_year":
                year = due_year(local, schedule.day, schedule.hour)
                if year is None:
                    continue
                for vehicle in schedule.vehicles:
                    queued += self._mail_year(schedule, vehicle, year, now)
                continue
            period = due_month(local, schedule.day, schedule.hour)
            if period is None:
                continue
            for vehicle in schedule.vehicles:
                queued += self._mail(schedule, vehicle, period, zone, now)
        if queued and self._on_queued is not None:
            self._on_queued()
        return queued

    def _addresses(self, schedule: ReportSchedule) -> list[str]:
        found: dict[str, None] = {}
        for name in schedule.recipients:
            for person_id in self._settings.members(name):
                email = self._settings.people[person_id].email
                if email is not None:
                    found[email] = None
        return list(found)

    def _mail(
        self,
        schedule: ReportSchedule,
        vehicle: str,
        period: tuple[date, date],
        zone: ZoneInfo,
        now: datetime,
    ) -> int:
        start, end = period
        addresses = self._addresses(schedule)
        keys = {a: _key("coldchain", vehicle, f"{start:%Y-%m}", a) for a in addresses}
        engine = self._store.engine
        with engine.connect() as conn:
            if storage.queued_keys(conn, keys.values()) == set(keys.values()):
                return 0
            row = conn.execute(
                sa.select(vehicles.c.operator, vehicles.c.label).where(vehicles.c.id == vehicle)
            ).first()
        configuration = load_configuration(self._store)
        rules = None if configuration is None else configuration.fridge.get(vehicle)
        if row is None or rules is None:
            log.warning("report for %s: vehicle or its fridge rules unknown", vehicle)
            return 0
        report = coldchain_of(
            store=self._store,
            vehicle=vehicle,
            operator=row.operator,
            label=row.label,
            start=start,
            end=end,
            zone=zone,
            rules=rules,
            now=now,
        )
        pdf = coldchain_pdf(report, now)
        month = f"{MONTHS_FR[start.month - 1]} {start.year}"
        filename = f"fridge-{vehicle}-{start}-{end}.pdf"
        subject = f"Médicobus – relevé chaîne du froid {row.label} – {month}"
        added = self._queue(
            keys, subject=subject, text=summary_text(report), filename=filename, pdf=pdf, now=now
        )
        log.info("cold-chain sheet of %s for %s: %d e-mail(s) queued", vehicle, month, added)
        return added

    def _mail_year(self, schedule: ReportSchedule, vehicle: str, year: int, now: datetime) -> int:
        addresses = self._addresses(schedule)
        keys = {a: _key("funder", vehicle, str(year), a) for a in addresses}
        with self._store.engine.connect() as conn:
            if storage.queued_keys(conn, keys.values()) == set(keys.values()):
                return 0
        configuration = load_configuration(self._store)
        v = next((r for r in self._store.vehicles() if r.id == vehicle), None)
        if configuration is None or v is None:
            return 0
        try:
            report = funder_of(
                store=self._store,
                v=v,
                year=year,
                configuration=configuration,
                visits=self._visits,
                now=now,
            )
        except ReportUnavailableError as exc:
            if (vehicle, year) not in self._unavailable:
                self._unavailable.add((vehicle, year))
                log.warning("funder report of %s for %d not sent: %s", vehicle, year, exc)
            return 0
        pdf = funder_pdf(report, now)
        subject = f"Médicobus – rapport annuel {year} – {v.label}"
        filename = f"funder-{vehicle}-{year}.pdf"
        added = self._queue(
            keys, subject=subject, text=funder_text(report), filename=filename, pdf=pdf, now=now
        )
        log.info("funder report of %s for %d: %d e-mail(s) queued", vehicle, year, added)
        return added

    def _queue(
        self,
        keys: dict[str, str],
        *,
        subject: str,
        text: str,
        filename: str,
        pdf: bytes,
        now: datetime,
    ) -> int:
        messages = [
            storage.Message(
                alert_id=storage.NO_ALERT,
                event="report",
                channel="email",
                recipient=address,
                dedup_key=key,
                subject=subject,
                text=text,
                attachments=((filename, pdf),),
            )
            for address, key in keys.items()
        ]
        with self._store.engine.begin() as conn:
            return storage.enqueue(conn, messages, now)

    # --- the thread ----------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="report-mail", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.mail_due()
            except Exception:
                log.exception("scheduled reports failed; again in %.0f s", self._settings.tick_s)
            self._wake.wait(self._settings.tick_s)
            self._wake.clear()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
