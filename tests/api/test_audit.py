"""The audit log (SQLite, PostgreSQL): every change made through the API is there with
who, role, address and when; refusals and repeats add nothing; admins only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from api.app import create_app
from ingest.itinerary import Itinerary
from ingest.store import Store
from protocol.clock import ManualClock
from tests.support.live import TEST_USERS, serving
from tests.support.tracked_day import track_vexin_monday

EVENING = datetime(2026, 11, 16, 19, 0, tzinfo=UTC)
ADMIN = {"Authorization": "Bearer admin-token-for-tests"}
COORD = {"Authorization": "Bearer coord-eure-token"}
VESLY = "vexin-01:2026-11-16:vesly"
FRIDAY = "vexin-01:2026-11-20:hacqueville"


@pytest.fixture
def api(store: Store, itinerary: Itinerary) -> Iterator[httpx.Client]:
    track_vexin_monday(store, itinerary, EVENING)
    app = create_app(store, TEST_USERS, clock=ManualClock(EVENING))
    with serving(app) as url, httpx.Client(base_url=url, headers=COORD, timeout=10) as client:
        yield client


def audit(api: httpx.Client, **params: str) -> list[dict[str, Any]]:
    r = api.get("/api/v1/audit", params=params, headers=ADMIN)
    assert r.status_code == 200, r.text
    entries: list[dict[str, Any]] = r.json()
    return entries


def test_every_change_is_logged_with_who_when_and_where(api: httpx.Client) -> None:
    assert api.post(f"/api/v1/visits/{VESLY}/confirm", json={"note": "ok"}).status_code == 200
    # Confirming again records nothing; a refused correction neither.
    assert api.post(f"/api/v1/visits/{VESLY}/confirm", json={}).status_code == 200
    refused = api.post(
        f"/api/v1/visits/{VESLY}/correct",
        json={"arrival": "2026-11-30T09:00:00+01:00", "reason": "typo"},
    )
    assert refused.status_code == 422
    assert (
        api.post(
            f"/api/v1/visits/{FRIDAY}/cancel",
            json={"reason": "congés du médecin", "public_message": "Reporté"},
        ).status_code
        == 200
    )
    assert (
        api.post(f"/api/v1/visits/{VESLY}/attendance", json={"patients_seen": 9}).status_code == 200
    )
    alert = api.get("/api/v1/alerts").json()[0]
    assert (
        api.post(f"/api/v1/alerts/{alert['id']}/ack", json={"comment": "appelé"}).status_code == 200
    )
    assert api.post(f"/api/v1/alerts/{alert['id']}/ack", json={}).status_code == 409

    entries = audit(api)
    assert [(e["action"], e["target"]) for e in entries] == [
        ("alert.ack", f"alert {alert['id']}"),
        ("visit.attendance", VESLY),
        ("visit.cancel", FRIDAY),
        ("visit.confirm", VESLY),
    ]
    for e in entries:
        assert (e["who"], e["role"], e["address"]) == ("coord-eure", "coordinator", "127.0.0.1")
        assert datetime.fromisoformat(e["at"]) == EVENING
    details = {e["action"]: e["detail"] for e in entries}
    assert details["visit.cancel"] == {"reason": "congés du médecin", "public_message": "Reporté"}
    assert details["visit.attendance"] == {"patients_seen": 9}
    assert details["alert.ack"] == {"comment": "appelé"}
    assert details["visit.confirm"]["note"] == "ok"
    # Filters.
    assert [e["action"] for e in audit(api, action="visit.cancel")] == ["visit.cancel"]
    assert audit(api, who="someone-else") == []
    assert len(audit(api, **{"from": "2026-11-16", "to": "2026-11-16"})) == 4
    assert audit(api, **{"from": "2026-11-17", "to": "2026-11-17"}) == []


def test_only_admins_read_the_log(api: httpx.Client) -> None:
    for token in ("coord-eure-token", "fm-caux-token", "eng-eure-token", "funder-eure-token"):
        r = api.get("/api/v1/audit", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 403, token
    assert api.get("/api/v1/audit", params={"limit": 0}, headers=ADMIN).status_code == 422
    assert api.get("/api/v1/audit", params={"limit": 10**30}, headers=ADMIN).status_code == 422
    nul = api.get("/api/v1/audit", params={"who": "coord\x00eure"}, headers=ADMIN)
    assert nul.status_code == 422
