"""The reports as PDF: the text pypdf extracts from the document carries the figures the
API's JSON report gives, as printed (French decimal comma, local dates)."""

from __future__ import annotations

import io
import re

from pypdf import PdfReader

from ingest.itinerary import Itinerary
from ingest.reports.pdf import hours_minutes, number
from ingest.store import Store
from tests.api import test_coldchain_api, test_reports
from tests.support.live import running_api


def pdf_text(body: bytes) -> str:
    reader = PdfReader(io.BytesIO(body))
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))


def test_the_monthly_fridge_sheet_carries_the_reports_figures(
    store: Store, itinerary: Itinerary
) -> None:
    test_coldchain_api.derive(store, itinerary)
    month = {"vehicle": "vexin-01", "from": "2026-01-01", "to": "2026-01-31"}
    with running_api(store, token="coord-eure-token") as api:
        alarms = api.get("/api/v1/coldchain/alarms", params={"vehicle": "vexin-01"}).json()
        heat = next(a for a in alarms if a["kind"] == "heat")
        ack = api.post(
            f"/api/v1/coldchain/alarms/{heat['id']}/ack",
            json={"comment": "Vaccins mis en quarantaine, pharmacie prévenue <b>&"},
        )
        assert ack.status_code == 200, ack.text
        report = api.get("/api/v1/reports/coldchain", params=month).json()
        got = api.get("/api/v1/reports/coldchain", params={**month, "format": "pdf"})
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "application/pdf"
    assert (
        'filename="fridge-vexin-01-2026-01-01-2026-01-31.pdf"' in got.headers["content-disposition"]
    )
    text = pdf_text(got.content)
    assert "Relevé de température du réfrigérateur – janvier 2026" in text
    assert "Doct'Eure Vexin-Normand (vexin-01)" in text
    assert len(report["days"]) == 31
    for d in report["days"]:
        day = "/".join(reversed(d["date"].split("-")))
        row = " ".join(
            [
                day,
                number(d["min_c"]),
                number(d["max_c"]),
                hours_minutes(d["in_range_min"]),
                hours_minutes(d["above_min"]),
                hours_minutes(d["below_min"]),
                hours_minutes(d["no_data_min"]),
                str(d["samples"]),
                str(d["excursions"]),
            ]
        )
        assert row in text, row
    s = report["summary"]
    assert (
        f"Jours : {s['days']} ; conformes {s['in_range']} ; incomplets {s['incomplete']} ; "
        f"sans données {s['no_data']}"
    ) in text
    # Each alarm with who acknowledged it and their comment.
    assert len(report["alarms"]) == len(alarms) == 4
    assert "chaleur 12/01/2026 07:00 12/01/2026 17:01 10 h 01 9,0 coord-eure" in text
    assert "Vaccins mis en quarantaine, pharmacie prévenue <b>&" in text
    assert text.count("non acquittée") == 3


def test_the_funder_report_as_pdf_carries_the_same_figures(
    store: Store, itinerary: Itinerary
) -> None:
    test_reports.derive(store, itinerary, "arrete-2017")
    params = {"vehicle": "vexin-01", "year": 2026}
    with running_api(store, token="coord-eure-token") as api:
        report = api.get("/api/v1/reports/funder", params=params).json()
        got = api.get("/api/v1/reports/funder", params={**params, "format": "pdf"})
        assert (
            api.get("/api/v1/reports/funder", params={**params, "format": "xls"}).status_code == 422
        )
    assert got.status_code == 200, got.text
    text = pdf_text(got.content)
    assert "Rapport annuel 2026 – Doct'Eure Vexin-Normand" in text
    assert f"Distance parcourue {number(report['distance_km'])} km" in text
    assert f"Jours d'activité {report['operating_days']}" in text
    assert f"CO2e du puits à la roue {number(report['co2e']['wtw_kgco2e'])} kg" in text
    assert (
        f"dont combustion (réservoir à la roue) {number(report['co2e']['ttw_kgco2e'])} kg" in text
    )
    assert "Facteurs d'émission arrete-2017" in text
    days = report["coldchain"]["days"]
    assert f"Chaîne du froid : jours conformes {days['in_range']} / {days['days']}" in text
    for note in report["notes"]:
        assert note in text


def test_the_longest_comments_and_markup_fit_on_the_sheet(
    store: Store, itinerary: Itinerary
) -> None:
    test_coldchain_api.derive(store, itinerary)
    comment = "<&>" + "x" * 997  # the longest the API takes, without a space to wrap at
    with running_api(store, token="coord-eure-token") as api:
        for alarm in api.get("/api/v1/coldchain/alarms", params={"vehicle": "vexin-01"}).json():
            ack = api.post(f"/api/v1/coldchain/alarms/{alarm['id']}/ack", json={"comment": comment})
            assert ack.status_code == 200, ack.text
        got = api.get(
            "/api/v1/reports/coldchain",
            params={
                "vehicle": "vexin-01",
                "from": "2026-01-01",
                "to": "2026-01-31",
                "format": "pdf",
            },
        )
    assert got.status_code == 200, got.text
    text = pdf_text(got.content)
    assert text.count("<&>xxx") == 4
    assert "non acquittée" not in text
