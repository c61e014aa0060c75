"""Patients seen, entered by coordinators, and the reports' visit figures from the stored
visits: a Monday the ingest tracked (punctuality and footprint), then the footprint and
funder reports through the API (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from ingest.domain import IngestDomain
from ingest.itinerary import Itinerary
from ingest.pipeline import Ingestor
from ingest.punctuality.config import PunctualitySettings
from ingest.punctuality.figures import StoredVisitFigures
from ingest.punctuality.tracker import PunctualityTracker
from ingest.settings import DomainSettings
from ingest.store import Store
from ingest.validation import Limits
from protocol.clock import ManualClock
from tests.ingest.punctuality.test_tracker import MONDAY, RECEIVED, vexin_monday
from tests.support.domain import feed
from tests.support.live import running_api

COORD = {"Authorization": "Bearer coord-eure-token"}
FM_CAUX = {"Authorization": "Bearer fm-caux-token"}
ENG = {"Authorization": "Bearer eng-eure-token"}
VESLY = "vexin-01:2026-11-16:vesly"  # arrived 3 min late: on time
HACQUEVILLE = "vexin-01:2026-11-16:hacqueville"  # 12 min late
TERRES_DE_CAUX = "caux-01:2026-11-16:terres-de-caux"  # caux-01 never came: missed
ALLOUVILLE = "caux-01:2026-11-16:allouville-bellefosse"
DAY = {"from": "2026-11-16", "to": "2026-11-16"}
# What "now" is to the visit figures: the Monday evening, the rest of the fortnight ahead.
EVENING = datetime(2026, 11, 16, 19, 0, tzinfo=UTC)
# The ingest's clock when it derives the Monday's footprint.
NEXT_NOON = datetime(2026, 11, 17, 12, 0, tzinfo=UTC)


@pytest.fixture
def api(store: Store, itinerary: Itinerary) -> Iterator[httpx.Client]:
    domain = IngestDomain(store, itinerary, DomainSettings(), ManualClock(NEXT_NOON))
    tracker = PunctualityTracker(store, itinerary, PunctualitySettings(horizon_days=14))
    tracker.start(MONDAY, past_days=1)
    ingestor = Ingestor(
        store, Limits(max_age=timedelta(days=3650)), observers=[tracker, *domain.observers]
    )
    outcomes = feed(ingestor, vexin_monday(itinerary), RECEIVED)
    assert {o.status for o in outcomes} == {"stored"}
    domain.catch_up()  # the day's footprint
    figures = StoredVisitFigures(store, ManualClock(EVENING))
    with running_api(store, visit_figures=figures) as client:
        yield client


def attend(api: httpx.Client, visit: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    return api.post(f"/api/v1/visits/{visit}/attendance", json=body, headers=headers)


def day_visits(api: httpx.Client, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = api.get("/api/v1/visits", params={"date": "2026-11-16"}, headers=headers)
    assert response.status_code == 200, response.text
    return {v["id"]: v for v in response.json()["visits"]}


def test_coordinators_enter_patients_seen_and_the_latest_count_holds(api: httpx.Client) -> None:
    first = attend(api, VESLY, {"patients_seen": 12, "note": "flu clinic"}, COORD)
    assert first.status_code == 200, first.text
    assert (first.json()["patients_seen"], first.json()["patients_seen_by"]) == (12, "coord-eure")
    assert attend(api, VESLY, {"patients_seen": 14}, COORD).status_code == 200
    assert attend(api, HACQUEVILLE, {"patients_seen": 200}, COORD).status_code == 200  # the bound
    assert attend(api, HACQUEVILLE, {"patients_seen": 0}, {}).status_code == 200  # the admin

    visits = day_visits(api, COORD)
    assert visits[VESLY]["patients_seen"] == 14
    assert visits[VESLY]["status"] == "on_time"  # a count changes nothing else
    assert (visits[HACQUEVILLE]["patients_seen"], visits[HACQUEVILLE]["patients_seen_by"]) == (
        0,
        "admin",
    )
    assert day_visits(api)[ALLOUVILLE]["patients_seen"] is None

    history = api.get(f"/api/v1/visits/{VESLY}/history", headers=ENG).json()
    assert [(c["kind"], c["patients_seen"], c["note"], c["who"]) for c in history["changes"]] == [
        ("attendance", 12, "flu clinic", "coord-eure"),
        ("attendance", 14, None, "coord-eure"),
    ]
    for change in history["changes"]:
        assert abs(datetime.fromisoformat(change["at"]) - datetime.now(UTC)) < timedelta(minutes=1)
    assert history["visit"]["patients_seen"] == 14
    # A count does not stand in for a confirmation: the arrival is still only detected.
    assert history["visit"]["confirmed_arrival"] is None


BAD_COUNTS: list[tuple[str, Any, dict[str, str], int, str]] = [
    (HACQUEVILLE, {"patients_seen": -1}, COORD, 422, "greater than or equal to 0"),
    (HACQUEVILLE, {"patients_seen": 201}, COORD, 422, "less than or equal to 200"),
    (HACQUEVILLE, {"patients_seen": "12"}, COORD, 422, "valid integer"),
    (HACQUEVILLE, {"patients_seen": 3.5}, COORD, 422, "valid integer"),
    (HACQUEVILLE, {"patients_seen": True}, COORD, 422, "valid integer"),
    (HACQUEVILLE, {}, COORD, 422, "patients_seen"),
    (HACQUEVILLE, None, COORD, 422, "body"),
    (HACQUEVILLE, {"patients_seen": 3, "note": "x" * 501}, COORD, 422, "at most 500"),
    (HACQUEVILLE, {"patients_seen": 3}, FM_CAUX, 403, "may not do this"),
    (HACQUEVILLE, {"patients_seen": 3}, ENG, 403, "may not do this"),
    (HACQUEVILLE, {"patients_seen": 3}, {"Authorization": "Bearer nope"}, 401, "token"),
    (ALLOUVILLE, {"patients_seen": 3}, COORD, 404, "no visit"),  # another operator's
    ("vexin-01:2026-11-16:morgny", {"patients_seen": 3}, COORD, 404, "no visit"),
    (ALLOUVILLE, {"patients_seen": 3}, {}, 409, "has no arrival (missed)"),
    ("vexin-01:2026-11-20:hacqueville", {"patients_seen": 3}, {}, 409, "has no arrival"),
    (TERRES_DE_CAUX, {"patients_seen": 3}, {}, 409, "is cancelled (strike)"),
]


def test_bad_counts_get_a_clear_error_and_change_nothing(api: httpx.Client) -> None:
    assert api.post(f"/api/v1/visits/{TERRES_DE_CAUX}/cancel", json={"reason": "strike"}).is_success
    for visit, body, headers, status, words in BAD_COUNTS:
        response = attend(api, visit, body, headers)
        assert response.status_code == status, (visit, body, response.text)
        assert words in str(response.json()["detail"]), (visit, body, response.text)
    assert api.get(f"/api/v1/visits/{HACQUEVILLE}/history").json()["changes"] == []
    assert api.get(f"/api/v1/visits/{ALLOUVILLE}/history").json()["changes"] == []
    assert len(api.get(f"/api/v1/visits/{TERRES_DE_CAUX}/history").json()["changes"]) == 1
    # Once counted, the visit took place: it can no longer be cancelled.
    assert attend(api, VESLY, {"patients_seen": 9}, COORD).status_code == 200
    refused = api.post(f"/api/v1/visits/{VESLY}/cancel", json={"reason": "x"}, headers=COORD)
    assert refused.status_code == 409


def footprint(api: httpx.Client, vehicle: str, headers: dict[str, str] | None = None) -> Any:
    response = api.get(
        "/api/v1/reports/footprint", params={"vehicle": vehicle, **DAY}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def funder(api: httpx.Client, vehicle: str, year: int = 2026) -> Any:
    response = api.get("/api/v1/reports/funder", params={"vehicle": vehicle, "year": year})
    assert response.status_code == 200, response.text
    return response.json()


def test_reports_count_the_stored_visits_and_the_trips_they_avoided(api: httpx.Client) -> None:
    # Held visits but no count yet: patients seen are not recorded, visits are.
    before = footprint(api, "vexin-01", COORD)
    assert before["totals"]["avoided"] is None
    assert any("avoided patient trips" in n and "not recorded" in n for n in before["notes"])
    bus_wtw = before["totals"]["co2e"]["wtw_kgco2e"]
    assert before["totals"]["distance_km"] > 10 and bus_wtw > 0
    assert before["totals"]["per_visit"]["wtw_kgco2e"] == pytest.approx(bus_wtw / 2)
    assert funder(api, "vexin-01")["patients_seen"] is None

    for visit, count in ((VESLY, 12), (VESLY, 14), (HACQUEVILLE, 7)):
        assert attend(api, visit, {"patients_seen": count}, COORD).status_code == 200
    assert api.post(f"/api/v1/visits/{TERRES_DE_CAUX}/cancel", json={"reason": "strike"}).is_success

    totals = footprint(api, "vexin-01", COORD)["totals"]
    # 14 patients × 2 × 11 km (Vesly) + 7 × 2 × 12 km (Hacqueville) = 308 + 168 car km.
    avoided = totals["avoided"]
    assert (avoided["visits"], avoided["patients_seen"]) == (2, 21)
    assert avoided["car_km"] == pytest.approx(476.0)
    car_factor = avoided["car_factor"]["kgco2e_per_km"]
    assert avoided["kgco2e"] == pytest.approx(476 * car_factor)
    assert totals["co2e"]["wtw_kgco2e"] == pytest.approx(bus_wtw)  # avoided stands beside
    assert totals["balance"]["net_kgco2e"] == pytest.approx(bus_wtw - 476 * car_factor)

    vexin = funder(api, "vexin-01")
    assert vexin["visits"] == {"scheduled": 2, "held": 2, "cancelled": 0}
    assert vexin["patients_seen"] == 21
    assert vexin["punctuality"] == {
        "early": 0,
        "on_time": 1,
        "late": 1,
        "missed": 0,
        "mean_delay_min": pytest.approx(7.5, abs=0.1),
    }
    assert vexin["avoided"]["car_km"] == pytest.approx(476.0)
    assert not [n for n in vexin["notes"] if "visits" in n or "punctuality" in n]

    # caux-01 stayed at home: one visit cancelled, one missed, nobody seen, no trip avoided.
    caux = funder(api, "caux-01")
    assert caux["visits"] == {"scheduled": 2, "held": 0, "cancelled": 1}
    assert caux["patients_seen"] == 0
    assert caux["punctuality"] == {
        "early": 0,
        "on_time": 0,
        "late": 0,
        "missed": 1,
        "mean_delay_min": None,
    }
    assert caux["avoided"]["car_km"] == 0.0
    assert footprint(api, "caux-01", FM_CAUX)["totals"]["per_visit"] is None

    # A year the system holds no visit of: not recorded, not zero.
    past = funder(api, "vexin-01", 2025)
    assert (past["visits"], past["patients_seen"], past["punctuality"]) == (None, None, None)
    assert "visits held and scheduled: not recorded in this system" in past["notes"]
