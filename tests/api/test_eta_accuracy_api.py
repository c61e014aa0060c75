"""The ETAs' measured accuracy over HTTP: the punctuality report's section and the
Prometheus metrics, after a tracked day (SQLite, PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from api.app import create_app
from ingest.itinerary import Itinerary
from ingest.metrics import IngestMetrics
from ingest.punctuality.config import PunctualitySettings
from ingest.punctuality.storage import PunctualityStore
from ingest.punctuality.tracker import PunctualityTracker
from ingest.store import Store
from protocol.clock import ManualClock
from tests.api.test_visits import COORD, FM_CAUX, serving
from tests.ingest.punctuality.days import Call, batches_of, simulated_day
from tests.ingest.punctuality.test_tracker import MONDAY, ingest, utc
from tests.support.live import TEST_USERS


def test_the_accuracy_of_published_etas_by_horizon(store: Store, itinerary: Itinerary) -> None:
    tracker = PunctualityTracker(store, itinerary, PunctualitySettings(eta_every_s=0))
    tracker.start(MONDAY, past_days=1)
    calls = [Call("vesly", utc(8, 3), utc(11, 0)), Call("hacqueville", utc(13, 0), utc(16, 0))]
    samples = simulated_day(itinerary, "vexin-01", calls, step_s=10)
    ingest(store, tracker, batches_of("vexin-01", samples, 30))
    now = utc(18, 0)
    metrics = IngestMetrics()
    metrics.track_eta_accuracy(lambda: PunctualityStore(store).recent_accuracy(now))
    app = create_app(store, TEST_USERS, metrics=metrics.registry)
    app.state.clock = ManualClock(now)
    with serving(app) as client:
        report = client.get(
            "/api/v1/reports/punctuality/eta-accuracy",
            params={"from": "2026-11-16", "to": "2026-11-16"},
        )
        assert report.status_code == 200, report.text
        body = report.json()
        assert (body["from"], body["to"], body["rank"]) == ("2026-11-16", "2026-11-16", None)
        horizons = {h["bucket"]: h for h in body["horizons"]}
        assert list(horizons) == ["0-5", "5-15", "15-30", "30-60", ">60"]
        assert sum(h["predictions"] for h in horizons.values()) > 10
        far = horizons[">60"]
        # Hours ahead, the bus parked at the depot or at Vesly: the timetable as it keeps it.
        assert far["predictions"] > 0
        assert far["eta_p50_s"] <= far["timetable_p50_s"]
        assert far["eta_p50_s"] <= far["eta_p90_s"]
        first = client.get(
            "/api/v1/reports/punctuality/eta-accuracy",
            params={"from": "2026-11-16", "to": "2026-11-16", "rank": 1},
        ).json()
        assert sum(h["predictions"] for h in first["horizons"]) <= sum(
            h["predictions"] for h in horizons.values()
        )
        # Another operator's fleet manager sees none of it; bad periods are refused.
        with_caux = client.get(
            "/api/v1/reports/punctuality/eta-accuracy",
            params={"from": "2026-11-16", "to": "2026-11-16"},
            headers=FM_CAUX,
        ).json()
        assert sum(h["predictions"] for h in with_caux["horizons"]) == 0
        refused = client.get(
            "/api/v1/reports/punctuality/eta-accuracy",
            params={"from": "2026-11-17", "to": "2026-11-16"},
            headers=COORD,
        )
        assert refused.status_code == 422
        assert "before" in refused.json()["detail"]
        for params in (
            {"from": "2026-11-16", "to": "2026-11-16", "rank": "0"},
            {"from": "2026-11-16", "to": "2026-11-16", "rank": "99999999999999999999"},
            {"from": "0001-01-01", "to": "9999-12-31"},
            {"from": "2026-11-16", "to": "2026-11-16", "vehicle": "caux-01\x00"},
        ):
            bad = client.get(
                "/api/v1/reports/punctuality/eta-accuracy", params=params, headers=COORD
            )
            assert bad.status_code in {404, 422}, (params, bad.text)
        text = client.get("/metrics").text
    lines = [ln for ln in text.splitlines() if ln.startswith("medicobus_eta_")]
    assert any(
        ln.startswith('medicobus_eta_abs_error_seconds{bucket=">60",estimate="eta",quantile="0.5"}')
        for ln in lines
    ), lines
    assert any(
        ln.startswith('medicobus_eta_abs_error_seconds{bucket=">60",estimate="timetable"')
        for ln in lines
    )
    settled = {
        ln.split('"')[1]: float(ln.rsplit(" ", 1)[1])
        for ln in lines
        if ln.startswith("medicobus_eta_predictions_settled{")
    }
    assert sum(settled.values()) == sum(h["predictions"] for h in horizons.values())
    assert now - utc(13, 0) < timedelta(days=1)
