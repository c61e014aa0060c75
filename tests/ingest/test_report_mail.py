"""The monthly cold-chain sheet e-mailed as PDF on its schedule, through a real SMTP
server: once per month and recipient, with the figures of the API's report."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ingest.alerts.notify_settings import NotificationSettings
from ingest.domain import DomainConfigError, IngestDomain
from ingest.itinerary import Itinerary
from ingest.reports.mailing import due_month, due_year
from ingest.reports.pdf import number
from ingest.settings import DomainSettings, FootprintSettings
from ingest.store import Store
from protocol.clock import ManualClock
from tests.api import test_coldchain_api, test_reports
from tests.api.test_report_pdf import pdf_text
from tests.support.live import running_api
from tests.support.smtp import PASSWORD, USER, SmtpServer

PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (datetime(2026, 12, 3, 9, 0), (date(2026, 11, 1), date(2026, 11, 30))),
        # Before day 1 at 06:00 the latest due month is the one before.
        (datetime(2026, 12, 1, 5, 59), (date(2026, 10, 1), date(2026, 10, 31))),
        (datetime(2026, 12, 1, 6, 0), (date(2026, 11, 1), date(2026, 11, 30))),
        (datetime(2026, 1, 15, 12, 0), (date(2025, 12, 1), date(2025, 12, 31))),
        (datetime(2028, 3, 2, 12, 0), (date(2028, 2, 1), date(2028, 2, 29))),
        (datetime(9999, 12, 31, 23, 59), (date(9999, 11, 1), date(9999, 11, 30))),
        (datetime(1, 1, 31, 12, 0), None),
        (datetime(1, 2, 1, 0, 0), None),
        (datetime(1, 2, 1, 6, 0), (date(1, 1, 1), date(1, 1, 31))),
    ],
)
def test_the_month_due(local: datetime, expected: tuple[date, date] | None) -> None:
    assert due_month(local, 1, 6) == expected


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    server = SmtpServer(tmp_path).start()
    yield server
    server.stop()


def settings(smtp: SmtpServer, vehicles: list[str]) -> NotificationSettings:
    return NotificationSettings.model_validate(
        {
            "people": {
                "pharma": {"name": "P", "email": "pharmacie@doct-eure.example"},
                "direction": {"name": "D", "email": "direction@doct-eure.example"},
            },
            "roles": {"qualite": ["pharma", "direction"]},
            "reports": [{"vehicles": vehicles, "recipients": ["qualite"], "day": 1, "hour": 6}],
            "smtp": {
                "host": "127.0.0.1",
                "port": smtp.port,
                "username": USER,
                "password": PASSWORD,
                "sender": "rapports@medicobus.example",
                "ca_file": str(smtp.cert),
            },
        }
    )


def test_the_sheet_of_last_month_is_mailed_once_with_the_reports_figures(
    store: Store, itinerary: Itinerary, smtp: SmtpServer
) -> None:
    test_coldchain_api.derive(store, itinerary)
    # 1 Feb 2026 at 06:00 in Paris.
    clock = ManualClock(datetime(2026, 2, 1, 5, 0, tzinfo=UTC))
    domain = IngestDomain(
        store, itinerary, DomainSettings(notifications=settings(smtp, ["vexin-01"])), clock
    )
    domain.catch_up()
    domain.catch_up()
    clock.advance(3600 * 24 * 3)
    domain.catch_up()
    mails = smtp.mails()
    assert sorted(r for m in mails for r in m.recipients) == [
        "direction@doct-eure.example",
        "pharmacie@doct-eure.example",
    ]
    mail = mails[0].message
    assert mail["Subject"] == (
        "Médicobus – relevé chaîne du froid Doct'Eure Vexin-Normand – janvier 2026"
    )
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == "fridge-vexin-01-2026-01-01-2026-01-31.pdf"
    pdf = attachment.get_content()
    text = pdf_text(pdf)
    with running_api(store, token="coord-eure-token") as api:
        report = api.get(
            "/api/v1/reports/coldchain",
            params={"vehicle": "vexin-01", "from": "2026-01-01", "to": "2026-01-31"},
        ).json()
    s = report["summary"]
    line = (
        f"Jours : {s['days']} ; conformes {s['in_range']} ; incomplets {s['incomplete']} ; "
        f"sans données {s['no_data']} ; avec alerte {s['with_warnings']} ; "
        f"avec alarme {s['with_alarms']}."
    )
    assert line in text
    assert line in mails[0].text
    heat_day = next(d for d in report["days"] if d["date"] == "2026-01-12")
    assert f"12/01/2026 {number(heat_day['min_c'])} {number(heat_day['max_c'])}" in text
    assert f"Alarmes : {len(report['alarms'])}, dont {len(report['alarms'])} non" in mails[0].text


def test_a_schedule_for_a_vehicle_outside_the_fleet_is_refused(
    store: Store, itinerary: Itinerary, smtp: SmtpServer
) -> None:
    with pytest.raises(DomainConfigError, match="ghost-01"):
        IngestDomain(store, itinerary, DomainSettings(notifications=settings(smtp, ["ghost-01"])))


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (datetime(2027, 1, 2, 6, 0), 2026),
        (datetime(2027, 1, 2, 5, 59), 2025),
        (datetime(2027, 12, 31, 23, 59), 2026),
        (datetime(9999, 12, 31, 23, 59), 9998),
        (datetime(1, 6, 1, 0, 0), None),
        (datetime(2, 1, 1, 0, 0), None),
        (datetime(2, 1, 2, 6, 0), 1),
    ],
)
def test_the_year_due(local: datetime, expected: int | None) -> None:
    assert due_year(local, 2, 6) == expected


def test_the_funders_year_is_mailed_once_in_january_with_the_reports_figures(
    store: Store, itinerary: Itinerary, smtp: SmtpServer
) -> None:
    test_reports.derive(store, itinerary, "arrete-2017")
    base = settings(smtp, ["vexin-01"]).model_dump()
    base["reports"] = [
        {"report": "funder_year", "vehicles": ["vexin-01"], "recipients": ["direction"]}
    ]
    base["smtp"]["password"] = PASSWORD
    # 1 Jan 2027 at 06:00 in Paris.
    clock = ManualClock(datetime(2027, 1, 1, 5, 0, tzinfo=UTC))
    domain = IngestDomain(
        store,
        itinerary,
        DomainSettings(
            footprint=FootprintSettings(factor_set="arrete-2017"),
            notifications=NotificationSettings.model_validate(base),
        ),
        clock,
    )
    domain.catch_up()
    domain.catch_up()
    [mail] = smtp.mails()
    assert mail.recipients == ["direction@doct-eure.example"]
    assert mail.message["Subject"] == ("Médicobus – rapport annuel 2026 – Doct'Eure Vexin-Normand")
    [attachment] = list(mail.message.iter_attachments())
    assert attachment.get_filename() == "funder-vexin-01-2026.pdf"
    text = pdf_text(attachment.get_content())
    with running_api(store, token="coord-eure-token") as api:
        report = api.get(
            "/api/v1/reports/funder", params={"vehicle": "vexin-01", "year": 2026}
        ).json()
    assert f"Distance parcourue {number(report['distance_km'])} km" in text
    assert f"CO2e du puits à la roue {number(report['co2e']['wtw_kgco2e'])} kg" in text
    assert f"Distance parcourue : {number(report['distance_km'])} km" in mail.text


def test_a_route_for_an_operator_outside_the_fleet_is_refused(
    store: Store, itinerary: Itinerary
) -> None:
    routed = NotificationSettings.model_validate(
        {
            "people": {"x": {"name": "X", "email": "x@example.fr"}},
            "routes": [{"operator": "doct-eur", "steps": [["x"]], "channels": ["email"]}],
            "smtp": {"host": "127.0.0.1", "sender": "a@example.fr"},
        }
    )
    with pytest.raises(DomainConfigError, match="doct-eur;"):
        IngestDomain(store, itinerary, DomainSettings(notifications=routed))
