"""One rule for which visits count, the same in every report: punctuality, footprint and
the funder's year agree on the same data (SQLite, PostgreSQL); the funder's year as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from api.app import create_app
from ingest.itinerary import Itinerary
from ingest.punctuality.figures import StoredVisitFigures
from ingest.store import Store
from protocol.clock import ManualClock
from tests.support.live import TEST_USERS, serving
from tests.support.tracked_day import track_vexin_monday

EVENING = datetime(2026, 11, 16, 19, 0, tzinfo=UTC)
NEXT_NOON = datetime(2026, 11, 17, 12, 0, tzinfo=UTC)
FRIDAY = "vexin-01:2026-11-20:hacqueville"
YEAR = {"from": "2026-01-01", "to": "2026-12-31"}
ADMIN = {"Authorization": "Bearer admin-token-for-tests"}


@dataclass
class Reports:
    api: httpx.Client
    clock: ManualClock


@pytest.fixture
def reports(store: Store, itinerary: Itinerary) -> Iterator[Reports]:
    track_vexin_monday(store, itinerary, NEXT_NOON)
    # One "now" for the API and the reports' figures, as in production (the system's).
    clock = ManualClock(EVENING)
    app = create_app(store, TEST_USERS, visit_figures=StoredVisitFigures(store, clock), clock=clock)
    with serving(app) as url, httpx.Client(base_url=url, headers=ADMIN, timeout=10) as api:
        yield Reports(api, clock)


def three_reports(api: httpx.Client, vehicle: str) -> tuple[Any, Any, Any]:
    punctuality = api.get(
        "/api/v1/reports/punctuality", params={**YEAR, "vehicle": vehicle}
    ).json()["total"]
    footprint = api.get("/api/v1/reports/footprint", params={**YEAR, "vehicle": vehicle})
    funder = api.get("/api/v1/reports/funder", params={"year": 2026, "vehicle": vehicle})
    assert footprint.status_code == funder.status_code == 200, (footprint.text, funder.text)
    return punctuality, footprint.json()["totals"], funder.json()


def assert_they_agree(punctuality: Any, footprint: Any, funder: Any) -> None:
    assert funder["visits"] == {
        "scheduled": punctuality["visits"],
        "held": punctuality["held"],
        "cancelled": punctuality["cancelled"],
    }
    for key in ("early", "on_time", "late", "missed"):
        assert funder["punctuality"][key] == punctuality[key], key
    if punctuality["held"]:
        per_visit = footprint["per_visit"]["wtw_kgco2e"]
        assert footprint["co2e"]["wtw_kgco2e"] / per_visit == pytest.approx(punctuality["held"])
    else:
        assert footprint["per_visit"] is None


def test_punctuality_footprint_and_funder_count_the_same_visits(reports: Reports) -> None:
    api = reports.api
    # Friday's visit, cancelled on Monday evening: ahead, it is counted by no report yet.
    cancel = api.post(f"/api/v1/visits/{FRIDAY}/cancel", json={"reason": "congés du médecin"})
    assert cancel.status_code == 200, cancel.text
    punctuality, footprint, funder = three_reports(api, "vexin-01")
    assert_they_agree(punctuality, footprint, funder)
    assert (punctuality["visits"], punctuality["held"], punctuality["cancelled"]) == (2, 2, 0)
    assert punctuality["pending"] == 0

    # Once its time has come, every report counts it as cancelled.
    reports.clock.set(datetime(2026, 11, 20, 12, 0, tzinfo=UTC))
    punctuality, footprint, funder = three_reports(api, "vexin-01")
    assert_they_agree(punctuality, footprint, funder)
    assert punctuality["cancelled"] == funder["visits"]["cancelled"] == 1
    assert punctuality["held"] == 2 and punctuality["visits"] > 3

    # And for a vehicle that never came: missed and cancelled alike.
    api.post("/api/v1/visits/caux-01:2026-11-16:terres-de-caux/cancel", json={"reason": "grève"})
    assert_they_agree(*three_reports(api, "caux-01"))


def rows(text: str) -> dict[str, str]:
    found = list(csv.reader(io.StringIO(text)))
    assert found[0] == ["figure", "value"]
    return dict(found[1:])


def test_the_funders_year_as_csv(reports: Reports) -> None:
    params = {"year": "2026", "vehicle": "vexin-01"}
    data = reports.api.get("/api/v1/reports/funder", params=params).json()
    by_format = reports.api.get("/api/v1/reports/funder", params={**params, "format": "csv"})
    by_accept = reports.api.get(
        "/api/v1/reports/funder", params=params, headers={"Accept": "text/csv"}
    )
    for response in (by_format, by_accept):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        assert 'filename="funder-vexin-01-2026.csv"' in response.headers["content-disposition"]
    assert by_format.text == by_accept.text
    figures = rows(by_format.text)
    assert figures["vehicle"] == "vexin-01" and figures["from"] == "2026-01-01"
    assert int(figures["visits.held"]) == data["visits"]["held"]
    assert float(figures["distance_km"]) == pytest.approx(data["distance_km"])
    assert figures["patients_seen"] == ""  # not recorded: empty, never 0
    assert figures["coldchain.rules.high_c"] == str(data["coldchain"]["rules"]["high_c"])
    # format wins over Accept; JSON stays the default.
    explicit = reports.api.get(
        "/api/v1/reports/funder",
        params={**params, "format": "json"},
        headers={"Accept": "text/csv"},
    )
    assert explicit.json()["vehicle"] == "vexin-01"
    bad = reports.api.get("/api/v1/reports/funder", params={**params, "format": "xlsx"})
    assert bad.status_code == 422


def test_every_report_answers_csv_to_accept_text_csv(reports: Reports) -> None:
    period = {"from": "2026-11-16", "to": "2026-11-16", "vehicle": "vexin-01"}
    for path in ("punctuality", "footprint", "coldchain"):
        response = reports.api.get(
            f"/api/v1/reports/{path}", params=period, headers={"Accept": "text/csv"}
        )
        assert response.status_code == 200, (path, response.text)
        assert response.headers["content-type"].startswith("text/csv"), path
