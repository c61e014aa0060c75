"""Alerts through the API: who sees them, who acknowledges them, with who and when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.alerts.evaluator import AlertEvaluator
from ingest.alerts.rules import HealthThresholds
from ingest.store import Store
from protocol import EnergyBatch, EnergySample, StatusBatch, StatusSample
from protocol.clock import ManualClock
from tests.support.live import running_api

NOW = datetime.now(UTC).replace(microsecond=0)


def raise_some(store: Store) -> AlertEvaluator:
    evaluator = AlertEvaluator(
        store,
        HealthThresholds(timedelta(minutes=5), timedelta(minutes=10), 20, 25),
        ManualClock(NOW + timedelta(seconds=1)),
    )
    for seq, vehicle in enumerate(("vexin-01", "caux-01")):
        will = StatusBatch(vehicle=vehicle, seq=seq, samples=[StatusSample(t=NOW, online=False)])
        store.save_batch(will, NOW)
    store.save_batch(
        EnergyBatch(
            vehicle="vexin-01",
            seq=0,
            samples=[EnergySample(t=NOW, source="bmv", soc_pct=15.0)],
        ),
        NOW,
    )
    evaluator.evaluate()
    return evaluator


def test_each_operator_sees_and_acknowledges_its_own_alerts(store: Store) -> None:
    raise_some(store)
    with running_api(store, token="coord-eure-token") as api:
        mine = api.get("/api/v1/alerts", params={"active": "true"}).json()
        assert sorted((a["vehicle"], a["kind"]) for a in mine) == [
            ("vexin-01", "low_battery"),
            ("vexin-01", "offline"),
        ]
        battery = next(a for a in mine if a["kind"] == "low_battery")
        assert battery["detail"]["soc_pct"] == 15.0
        assert "15 %" in battery["message"]
        assert battery["active"] is True and battery["acknowledged"] is None
        before = datetime.now(UTC)
        for bad in ("charging\x00", "\x1b[2J", "x" * 1001):
            refused = api.post(f"/api/v1/alerts/{battery['id']}/ack", json={"comment": bad})
            assert refused.status_code == 422, refused.text
        done = api.post(f"/api/v1/alerts/{battery['id']}/ack", json={"comment": "charging"})
        assert done.status_code == 200
        ack = done.json()["acknowledged"]
        assert (ack["by"], ack["comment"]) == ("coord-eure", "charging")
        assert datetime.fromisoformat(ack["at"]) >= before - timedelta(seconds=1)
        again = api.post(f"/api/v1/alerts/{battery['id']}/ack", json={})
        assert again.status_code == 409
        assert "already acknowledged by coord-eure" in again.json()["detail"]
        assert api.post(f"/api/v1/alerts/{battery['id']}/ack", json={"who": "x"}).status_code == 422
        only = api.get("/api/v1/alerts", params={"kind": "offline"}).json()
        assert [a["kind"] for a in only] == ["offline"]
    with running_api(store, token="fm-caux-token") as api:
        theirs = api.get("/api/v1/alerts", params={"active": "true"}).json()
        assert [(a["vehicle"], a["kind"]) for a in theirs] == [("caux-01", "offline")]
        assert api.post(f"/api/v1/alerts/{battery['id']}/ack", json={}).status_code == 404
        assert api.get("/api/v1/alerts", params={"vehicle": "vexin-01"}).status_code == 404
        assert api.post(f"/api/v1/alerts/{theirs[0]['id']}/ack", json={}).status_code == 200
    with running_api(store, token="eng-eure-token") as api:
        assert len(api.get("/api/v1/alerts").json()) == 2
        offline = next(a for a in api.get("/api/v1/alerts").json() if a["kind"] == "offline")
        refused = api.post(f"/api/v1/alerts/{offline['id']}/ack", json={})
        assert refused.status_code == 403
        assert api.get("/api/v1/alerts/kinds").json()["fridge_heat"] == "critical"


def test_cleared_alerts_are_listed_apart(store: Store) -> None:
    evaluator = raise_some(store)
    back = StatusBatch(
        vehicle="vexin-01",
        seq=5,
        samples=[StatusSample(t=NOW + timedelta(seconds=2), online=True)],
    )
    store.save_batch(back, NOW + timedelta(seconds=2))
    assert [e for e, _ in evaluator.evaluate(["vexin-01"])] == ["cleared"]
    with running_api(store) as api:
        cleared = api.get("/api/v1/alerts", params={"active": "false"}).json()
        active = api.get("/api/v1/alerts", params={"active": "true"}).json()
        assert api.get("/api/v1/alerts", params={"limit": 0}).status_code == 422
    assert [(a["vehicle"], a["kind"], a["active"]) for a in cleared] == [
        ("vexin-01", "offline", False)
    ]
    assert cleared[0]["cleared_at"] is not None
    assert sorted((a["vehicle"], a["kind"]) for a in active) == [
        ("caux-01", "offline"),
        ("vexin-01", "low_battery"),
    ]
