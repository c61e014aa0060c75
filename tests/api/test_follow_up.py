"""Consultations by patient profile on visits and the funder's yearly follow-up (SQLite,
PostgreSQL): counts entered with their history, every refusal, who may enter and read
them, the report's sums against the other reports, its CSV and PDF, and months imported
from before the system."""

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
from ingest.reports.configuration import load_configuration
from ingest.services.common import RefusedError
from ingest.services.follow_up import import_months
from ingest.store import Store
from protocol.clock import ManualClock
from tests.support.live import TEST_USERS, serving
from tests.support.tracked_day import track_vexin_monday

EVENING = datetime(2026, 11, 16, 19, 0, tzinfo=UTC)
NEXT_NOON = datetime(2026, 11, 17, 12, 0, tzinfo=UTC)
VESLY = "vexin-01:2026-11-16:vesly"
HACQUEVILLE = "vexin-01:2026-11-16:hacqueville"
FRIDAY = "vexin-01:2026-11-20:hacqueville"
ADMIN = {"Authorization": "Bearer admin-token-for-tests"}
COORD = {"Authorization": "Bearer coord-eure-token"}
FM_CAUX = {"Authorization": "Bearer fm-caux-token"}
FUNDER = {"Authorization": "Bearer funder-eure-token"}
ENG = {"Authorization": "Bearer eng-eure-token"}


@dataclass
class Setup:
    api: httpx.Client
    store: Store


@pytest.fixture
def setup(store: Store, itinerary: Itinerary) -> Iterator[Setup]:
    track_vexin_monday(store, itinerary, NEXT_NOON)
    clock = ManualClock(EVENING)
    app = create_app(store, TEST_USERS, visit_figures=StoredVisitFigures(store, clock), clock=clock)
    with serving(app) as url, httpx.Client(base_url=url, headers=COORD, timeout=10) as api:
        yield Setup(api, store)


def counts(**by_profile: int) -> dict[str, int]:
    return {k.replace("_", "-"): v for k, v in by_profile.items()}


VESLY_DAY = {
    "patients_seen": 12,
    "consultations": {
        "by_profile": {"ald-sans-mt": 3, "70-ans-sans-mt": 4, "autre-sans-mt": 2, "avec-mt": 3},
        "sas_referred": 2,
        "cpam_directed": 1,
        "offering": "general",
        "professionals": ["med-01", "ide-01"],
    },
}
HACQUEVILLE_DAY = {
    "patients_seen": 8,
    "consultations": {
        "by_profile": {"ald-sans-mt": 1, "70-ans-sans-mt": 0, "autre-sans-mt": 5, "avec-mt": 2},
        "offering": "dermatologie",
        "professionals": ["med-02"],
    },
}


def attend(api: httpx.Client, visit: str, body: dict[str, Any]) -> httpx.Response:
    return api.post(f"/api/v1/visits/{visit}/attendance", json=body)


def test_counts_by_profile_are_kept_with_their_history(setup: Setup) -> None:
    first = attend(
        setup.api,
        VESLY,
        {
            **VESLY_DAY,
            "patients_seen": 11,
            "consultations": {**VESLY_DAY["consultations"], "by_profile": {"avec-mt": 11}},
        },
    )
    assert first.status_code == 200, first.text
    again = attend(setup.api, VESLY, VESLY_DAY)
    assert again.status_code == 200, again.text
    body = again.json()
    assert body["patients_seen"] == 12
    assert body["consultations"] == VESLY_DAY["consultations"]
    history = setup.api.get(f"/api/v1/visits/{VESLY}/history").json()["changes"]
    assert [c["consultations"]["by_profile"] for c in history if c["kind"] == "attendance"] == [
        {"avec-mt": 11},
        VESLY_DAY["consultations"]["by_profile"],
    ]
    # Only counts are asked for: no field takes a patient's name or health data.
    schema = setup.api.get("/openapi.json").json()["components"]["schemas"]["ConsultationsBody"]
    assert set(schema["properties"]) == {
        "by_profile",
        "sas_referred",
        "cpam_directed",
        "offering",
        "professionals",
    }
    assert schema.get("additionalProperties") is False


def with_consultations(**changed: Any) -> dict[str, Any]:
    return {**VESLY_DAY, "consultations": {**VESLY_DAY["consultations"], **changed}}


REFUSED = [
    pytest.param(with_consultations(by_profile={"avec-mt": 5}), 422, "add up to 5", id="sum"),
    pytest.param(with_consultations(by_profile={"avec-mt": -1}), 422, "greater", id="negative"),
    pytest.param(
        with_consultations(by_profile={"inconnu": 12}), 422, "unknown patient", id="profile"
    ),
    pytest.param(with_consultations(sas_referred=13), 422, "referred by the SAS", id="sas"),
    pytest.param(with_consultations(cpam_directed=99), 422, "CPAM", id="cpam"),
    pytest.param(with_consultations(offering="cardiologie"), 422, "unknown kind", id="offering"),
    pytest.param(with_consultations(professionals=["med-99"]), 422, "med-99", id="professional"),
    pytest.param(with_consultations(by_profile={"avec-mt": 10**30}), 422, "less than", id="huge"),
    pytest.param(with_consultations(by_profile={"avec\x00mt": 12}), 422, "pattern", id="nul"),
    pytest.param(with_consultations(by_profile={"avec-mt": 12.0}), 422, "integer", id="float"),
    pytest.param(with_consultations(name="Mme X"), 422, "Extra inputs", id="identity"),
    pytest.param({**VESLY_DAY, "patients_seen": 10_000}, 422, "less than", id="absurd"),
]


@pytest.mark.parametrize(("body", "status", "reason"), REFUSED)
def test_counts_are_refused_with_a_reason_and_nothing_recorded(
    setup: Setup, body: dict[str, Any], status: int, reason: str
) -> None:
    refused = attend(setup.api, VESLY, body)
    assert refused.status_code == status, refused.text
    assert reason in refused.text
    visit = setup.api.get(f"/api/v1/visits/{VESLY}/history").json()
    assert visit["visit"]["patients_seen"] is None and visit["changes"] == []


def test_no_counts_on_a_cancelled_visit_nor_one_not_held(setup: Setup) -> None:
    cancel = setup.api.post(f"/api/v1/visits/{FRIDAY}/cancel", json={"reason": "congés"})
    assert cancel.status_code == 200, cancel.text
    cancelled = attend(setup.api, FRIDAY, VESLY_DAY)
    assert cancelled.status_code == 409 and "cancelled" in cancelled.text
    ahead = "vexin-01:2026-11-19:vesly"
    not_held = attend(setup.api, ahead, VESLY_DAY)
    assert not_held.status_code == 409 and "no arrival" in not_held.text


def test_who_enters_counts_and_who_reads_the_follow_up(setup: Setup) -> None:
    api = setup.api
    for headers in (FM_CAUX, ENG, FUNDER):
        assert (
            api.post(
                f"/api/v1/visits/{VESLY}/attendance", json=VESLY_DAY, headers=headers
            ).status_code
            == 403
        )
    assert attend(api, VESLY, VESLY_DAY).status_code == 200
    assert (
        api.post(f"/api/v1/visits/{VESLY}/attendance", json=VESLY_DAY, headers=ADMIN).status_code
        == 200
    )
    year = {"year": 2026, "operator": "doct-eure"}
    # The funder reads its operator's aggregates, nothing else.
    assert api.get("/api/v1/reports/follow-up", params=year, headers=FUNDER).status_code == 200
    funder_year = {"year": 2026, "vehicle": "vexin-01"}
    assert api.get("/api/v1/reports/funder", params=funder_year, headers=FUNDER).status_code == 200
    caux_year = {"year": 2026, "vehicle": "caux-01"}
    assert api.get("/api/v1/reports/funder", params=caux_year, headers=FUNDER).status_code == 404
    for path in (
        "/api/v1/visits?date=2026-11-16",
        "/api/v1/positions",
        "/api/v1/alerts",
        "/api/v1/coldchain/alarms",
        "/api/v1/reports/punctuality?from=2026-11-16&to=2026-11-16",
        f"/api/v1/visits/{VESLY}/history",
    ):
        assert api.get(path, headers=FUNDER).status_code == 403, path
    # Nothing across operators.
    other = {"year": 2026, "operator": "cpts-caux"}
    assert api.get("/api/v1/reports/follow-up", params=other, headers=FUNDER).status_code == 404
    caux = api.get(
        "/api/v1/reports/follow-up", params={"year": 2026, "vehicle": "vexin-01"}, headers=FM_CAUX
    )
    assert caux.status_code == 404
    # One of vehicle or operator; no year to come.
    assert api.get("/api/v1/reports/follow-up", params={"year": 2026}).status_code == 422
    assert (
        api.get(
            "/api/v1/reports/follow-up", params={"year": 2027, "operator": "doct-eure"}
        ).status_code
        == 422
    )


def test_the_follow_up_agrees_with_the_funder_report(setup: Setup) -> None:
    api = setup.api
    assert attend(api, VESLY, VESLY_DAY).status_code == 200
    assert attend(api, HACQUEVILLE, HACQUEVILLE_DAY).status_code == 200
    params = {"year": 2026, "vehicle": "vexin-01"}
    report = api.get("/api/v1/reports/follow-up", params=params).json()
    funder = api.get("/api/v1/reports/funder", params=params).json()
    c = report["consultations"]
    assert c["patients_seen"] == funder["patients_seen"] == 20
    assert c["visits_held"] == funder["visits"]["held"] == 2
    assert c["by_profile"] == {
        "ald-sans-mt": 4,
        "70-ans-sans-mt": 4,
        "autre-sans-mt": 7,
        "avec-mt": 5,
    }
    assert sum(c["by_profile"].values()) == c["patients_seen"] + c["imported"]
    assert (c["sas_referred"], c["cpam_directed"], c["not_by_profile"]) == (2, 1, 0)
    (november,) = report["by_month"]
    assert november["month"] == "2026-11" and november["by_profile"] == c["by_profile"]
    assert {s["name"]: s["patients_seen"] for s in report["by_stop"]} == {
        "Vesly": 12,
        "Hacqueville": 8,
    }
    assert {o["offering"]: o["patients_seen"] for o in report["by_offering"]} == {
        "general": 12,
        "dermatologie": 8,
    }
    # Continuity: one visit per stop with a team, each with its stop's usual doctor.
    assert report["continuity"]["visits_with_team"] == 2
    assert report["continuity"]["share"] == 1.0
    (vexin,) = report["funder"]
    assert vexin["distance_km"] == funder["distance_km"]
    assert vexin["coldchain"]["days"] == funder["coldchain"]["days"]
    assert vexin["punctuality"] == funder["punctuality"]
    assert [y["year"] for y in report["three_years"]["years"]] == [2025, 2026]
    assert report["three_years"]["service_start"] == "2025-09-01"
    assert report["three_years"]["years"][1]["patients_seen"] == 20
    # The operator's report adds its vehicles up: here one has counts.
    fleet = api.get(
        "/api/v1/reports/follow-up", params={"year": 2026, "operator": "doct-eure"}
    ).json()
    assert fleet["consultations"] == c and fleet["vehicles"] == ["vexin-01"]


def test_the_follow_up_as_a_french_csv_and_a_pdf(setup: Setup) -> None:
    api = setup.api
    assert attend(api, VESLY, VESLY_DAY).status_code == 200
    params = {"year": 2026, "vehicle": "vexin-01"}
    response = api.get("/api/v1/reports/follow-up", params={**params, "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    raw = response.content
    assert raw.startswith("\ufeff".encode())
    lines = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert lines[0] == ["Rubrique", "Période", "Détail", "Valeur", "Importé"]
    by_profile = {r[2]: r[3] for r in lines if r[0] == "Consultations par profil"}
    assert by_profile["ALD sans médecin traitant"] == "3"
    assert ["Patients vus (passages)", "2026", "", "12", "non"] in lines
    assert any(r[0] == "Consultations par mois" and r[1] == "novembre 2026" for r in lines)
    pdf = api.get("/api/v1/reports/follow-up", params={**params, "format": "pdf"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_months_from_before_the_system_are_imported_and_marked(setup: Setup) -> None:
    store = setup.store
    configuration = load_configuration(store)
    assert configuration is not None
    now = EVENING
    text = (
        "\ufeffvehicule;mois;profil;consultations\r\n"
        "vexin-01;2025-10;ald-sans-mt;5\r\n"
        "vexin-01;2025-10;avec-mt;20\r\n"
        "vexin-01;2026-10;autre-sans-mt;7\r\n"
    )
    months = import_months(store, configuration, text, "bilan-2025.csv", now)
    assert sum(m.consultations for m in months) == 32
    # Importing the same file again changes nothing.
    import_months(store, configuration, text, "bilan-2025.csv", now)
    report = setup.api.get(
        "/api/v1/reports/follow-up", params={"year": 2026, "vehicle": "vexin-01"}
    ).json()
    assert report["consultations"]["imported"] == 7
    assert [(m["month"], m["imported"]) for m in report["by_month"]] == [("2026-10", True)]
    years = {y["year"]: y for y in report["three_years"]["years"]}
    assert years[2025]["imported"] == 25 and years[2025]["by_profile"]["avec-mt"] == 20
    assert years[2025]["complete"] is True and years[2026]["complete"] is False

    # A month with counts in the system is refused, so nothing counts twice.
    assert attend(setup.api, VESLY, VESLY_DAY).status_code == 200
    with pytest.raises(RefusedError, match="already has counts for vexin-01 2026-11"):
        import_months(
            store,
            configuration,
            "vehicule;mois;profil;consultations\nvexin-01;2026-11;avec-mt;1\n",
            "x.csv",
            now,
        )


BAD_FILES = [
    pytest.param("", "empty", id="empty"),
    pytest.param("vehicle,month\nvexin-01,2025-10\n", "first line", id="header"),
    pytest.param(
        "vehicule;mois;profil;consultations\nbus-99;2025-10;avec-mt;1\n",
        "unknown vehicle",
        id="vehicle",
    ),
    pytest.param(
        "vehicule;mois;profil;consultations\nvexin-01;2025-13;avec-mt;1\n",
        "does not exist",
        id="month",
    ),
    pytest.param(
        "vehicule;mois;profil;consultations\nvexin-01;9999-12;avec-mt;1\n",
        "has not begun",
        id="future",
    ),
    pytest.param(
        "vehicule;mois;profil;consultations\nvexin-01;0001-01;avec-mt;1\n",
        "before 2000",
        id="calendar",
    ),
    pytest.param(
        "vehicule;mois;profil;consultations\nvexin-01;2025-10;x;1\n",
        "unknown profile",
        id="profile",
    ),
    pytest.param(
        "vehicule;mois;profil;consultations\nvexin-01;2025-10;avec-mt;-1\n",
        "not a count",
        id="negative",
    ),
    pytest.param(
        "vehicule;mois;profil;consultations\nvexin-01;2025-10;avec-mt;1e9\n",
        "not a count",
        id="float",
    ),
    pytest.param(
        "vehicule;mois;profil;consultations\nvexin-01;2025-10;avec-mt;" + "9" * 40 + "\n",
        "not a count",
        id="huge",
    ),
    pytest.param(
        "vehicule;mois;profil;consultations\nvexin\x00;2025-10;avec-mt;1\n",
        "unknown vehicle",
        id="nul",
    ),
    pytest.param(
        "vehicule;mois;profil;consultations\nvexin-01;2025-10;avec-mt;1\nvexin-01;2025-10;avec-mt;2\n",
        "twice",
        id="twice",
    ),
]


@pytest.mark.parametrize(("text", "reason"), BAD_FILES)
def test_a_bad_import_is_refused_whole(setup: Setup, text: str, reason: str) -> None:
    configuration = load_configuration(setup.store)
    assert configuration is not None
    # A good line beside the bad ones is not imported either.
    if text.startswith("vehicule"):
        text += "vexin-01;2025-09;avec-mt;3\n"
    with pytest.raises(RefusedError, match=reason):
        import_months(setup.store, configuration, text, "bad.csv", EVENING)
    report = setup.api.get(
        "/api/v1/reports/follow-up", params={"year": 2025, "vehicle": "vexin-01"}
    ).json()
    assert report["consultations"]["imported"] == 0
