"""Every list the API returns is limited to the caller's operator: audited over every GET
route of the API, with two operators' data in the store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from api.app import create_app
from api.auth import ApiUser, Role, hash_token
from ingest.domain import IngestDomain
from ingest.itinerary import Itinerary
from ingest.punctuality.tracker import PunctualityTracker
from ingest.settings import DomainSettings
from ingest.store import Store
from tests.api.test_alerts_api import raise_some
from tests.ingest.punctuality.test_tracker import MONDAY, ingest, vexin_monday
from tests.support.live import serving

THEIRS = {
    "cpts-caux": [
        "vexin-01",
        "doct-eure",
        "gisors",
        "vesly",
        "bezu-saint-eloi",
        "hebecourt",
        "morgny",
        "hacqueville",
    ],
    "doct-eure": [
        "caux-01",
        "cpts-caux",
        "yvetot",
        "terres-de-caux",
        "saint-martin-de-l-if",
        "allouville-bellefosse",
        "cany-barville",
    ],
}
OWN_VEHICLE = {"cpts-caux": "caux-01", "doct-eure": "vexin-01"}
ROLES = (Role.FLEET_MANAGER, Role.COORDINATOR, Role.ENGINEER, Role.FUNDER)
USERS = [
    ApiUser(name=f"{role}@{op}", role=role, operator=op, token_sha256=hash_token(f"{role}-{op}"))
    for op in THEIRS
    for role in ROLES
]
# Not a list of the fleet: the kinds of alert, the live stream, who is signed in and how
# one signs in.
NOT_A_LIST = {
    "/api/v1/alerts/kinds",
    "/api/v1/live",
    "/api/v1/session",
    "/api/v1/session/providers",
    "/api/v1/session/oidc",
    "/api/v1/session/oidc/callback",
}


# How each GET route is asked, for an operator; a route missing here fails the audit.
def requests_for(operator: str) -> dict[str, list[tuple[str, dict[str, str]]]]:
    v = OWN_VEHICLE[operator]
    visit = f"{v}:2026-11-16:{'vesly' if v == 'vexin-01' else 'terres-de-caux'}"
    period = {"from": "2026-11-16", "to": "2026-11-16"}
    return {
        "/api/v1/vehicles": [("/api/v1/vehicles", {})],
        "/api/v1/positions": [("/api/v1/positions", {})],
        "/api/v1/stops": [("/api/v1/stops", {})],
        "/api/v1/rejections": [("/api/v1/rejections", {})],
        "/api/v1/visits": [("/api/v1/visits", {"date": "2026-11-16"})],
        "/api/v1/visits/{visit_id}/history": [(f"/api/v1/visits/{visit}/history", {})],
        "/api/v1/reports/punctuality": [
            ("/api/v1/reports/punctuality", {**period, "group_by": g})
            for g in ("vehicle", "stop", "day")
        ],
        "/api/v1/alerts": [("/api/v1/alerts", {}), ("/api/v1/alerts", {"active": "true"})],
        "/api/v1/alerts/deliveries": [("/api/v1/alerts/deliveries", {})],
        "/api/v1/alerts/routing": [("/api/v1/alerts/routing", {})],
        "/api/v1/coldchain/alarms": [("/api/v1/coldchain/alarms", {})],
        "/api/v1/coldchain/history": [("/api/v1/coldchain/history", {"vehicle": v})],
        "/api/v1/reports/punctuality/eta-accuracy": [
            ("/api/v1/reports/punctuality/eta-accuracy", period),
            ("/api/v1/reports/punctuality/eta-accuracy", {**period, "vehicle": v}),
        ],
        "/api/v1/reports/footprint": [("/api/v1/reports/footprint", {**period, "vehicle": v})],
        "/api/v1/reports/coldchain": [("/api/v1/reports/coldchain", {**period, "vehicle": v})],
        "/api/v1/reports/funder": [("/api/v1/reports/funder", {"vehicle": v, "year": "2026"})],
        "/api/v1/audit": [("/api/v1/audit", {}), ("/api/v1/audit", period)],
        "/api/v1/reports/follow-up/settings": [("/api/v1/reports/follow-up/settings", {})],
        "/api/v1/reports/follow-up": [
            ("/api/v1/reports/follow-up", {"vehicle": v, "year": "2026"}),
            ("/api/v1/reports/follow-up", {"operator": operator, "year": "2026"}),
            ("/api/v1/reports/follow-up", {"operator": operator, "year": "2026", "format": "csv"}),
        ],
        "/api/v1/vehicles/{vehicle_id}/track": [
            (f"/api/v1/vehicles/{v}/track", {"date": "2026-11-16"})
        ],
    }


@pytest.fixture
def two_operators(store: Store, itinerary: Itinerary) -> Iterator[str]:
    tracker = PunctualityTracker(store, itinerary)
    tracker.start(MONDAY, past_days=1)
    ingest(store, tracker, vexin_monday(itinerary))
    raise_some(store)
    # Records the settings the reports need, as a running ingest does.
    IngestDomain(store, itinerary, DomainSettings())
    now = datetime.now(UTC)
    for vehicle in ("vexin-01", "caux-01", "ghost-99"):
        store.quarantine(f"medicobus/v1/{vehicle}/gps", b"{oops", "invalid_json", "bad", now)
    with serving(create_app(store, USERS)) as url:
        yield url


def test_every_get_route_is_audited(store: Store) -> None:
    paths = create_app(store, USERS).openapi()["paths"]
    routes = {p for p, ops in paths.items() if "get" in ops and p.startswith("/api/")}
    assert routes - NOT_A_LIST == set(requests_for("doct-eure"))


@pytest.mark.parametrize("operator", sorted(THEIRS))
def test_no_list_carries_another_operators_vehicles_or_stops(
    two_operators: str, operator: str
) -> None:
    answered = 0
    for role in ROLES:
        with httpx.Client(
            base_url=two_operators, headers={"Authorization": f"Bearer {role}-{operator}"}
        ) as api:
            for calls in requests_for(operator).values():
                for path, params in calls:
                    r = api.get(path, params=params)
                    assert r.status_code < 500, (path, r.text)
                    text = r.text.lower()
                    for other in THEIRS[operator]:
                        assert other not in text, (role, path, other, r.text[:300])
                    answered += r.status_code == 200
    assert answered > 20


def test_a_fleet_manager_sees_only_the_stops_their_buses_use(two_operators: str) -> None:
    with httpx.Client(
        base_url=two_operators, headers={"Authorization": "Bearer fleet_manager-cpts-caux"}
    ) as api:
        stops = {s["id"] for s in api.get("/api/v1/stops").json()}
        assert stops == {
            "yvetot",
            "terres-de-caux",
            "saint-martin-de-l-if",
            "allouville-bellefosse",
            "cany-barville",
        }
        assert not stops & set(THEIRS["cpts-caux"])
        other = api.get("/api/v1/vehicles/vexin-01/track")
        assert other.status_code == 404


def test_engineers_see_the_rejections_of_their_vehicles_only(two_operators: str) -> None:
    with httpx.Client(
        base_url=two_operators, headers={"Authorization": "Bearer engineer-doct-eure"}
    ) as api:
        body = api.get("/api/v1/rejections").json()
        assert [r["topic"] for r in body["recent"]] == ["medicobus/v1/vexin-01/gps"]
        assert body["counts"] == {"invalid_json": 1}


EXTREMES = ("0001-01-01", "9999-12-31", "2026-02-30", "99999-01-01", "2026-11-16\x00")


def calendar_probes(params: dict[str, str]) -> list[dict[str, str]]:
    """The request's date parameters at the ends of the calendar and past them."""
    probes: list[dict[str, str]] = []
    if "date" in params:
        probes += [{**params, "date": d} for d in EXTREMES]
    if "from" in params:
        probes += [{**params, "from": a, "to": b} for a in EXTREMES for b in EXTREMES]
        probes += [{**params, "from": "0001-01-01", "to": "0001-01-02"}]
        probes += [{**params, "from": "9999-12-30", "to": "9999-12-31"}]
    if "year" in params:
        probes += [{**params, "year": y} for y in ("1", "9999", "-1", str(2**64))]
    return probes


@pytest.mark.parametrize("role", ROLES)
def test_dates_at_the_ends_of_the_calendar_get_an_answer_not_a_crash(
    two_operators: str, role: Role
) -> None:
    tried = 0
    with httpx.Client(
        base_url=two_operators, headers={"Authorization": f"Bearer {role}-doct-eure"}
    ) as api:
        for calls in requests_for("doct-eure").values():
            for path, params in calls:
                for probe in calendar_probes(params):
                    r = api.get(path, params=probe)
                    tried += 1
                    assert r.status_code < 500, (path, probe, r.text[:300])
                    if r.status_code >= 400 and r.status_code not in (401, 403):
                        assert r.json()["detail"], (path, probe)
        # The history of a fridge and the list of alarms, with their own periods.
        for probe in calendar_probes({"from": "", "to": ""}):
            for path in ("/api/v1/coldchain/alarms", "/api/v1/coldchain/history"):
                r = api.get(path, params={**probe, "vehicle": "vexin-01"})
                tried += 1
                assert r.status_code < 500, (path, probe, r.text[:300])
    assert tried > 200
