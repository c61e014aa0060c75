"""The cold chain through the API: the rules' boundaries, daily records, the 30-day
history, acknowledgements with who and when, and the CSV files."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from ingest.coldchain.daily import DAILY_COLUMNS
from ingest.itinerary import Itinerary
from ingest.reports.coldchain import ALARM_LOG_COLUMNS
from ingest.settings import DomainSettings
from ingest.store import Store
from protocol import FridgeBatch, FridgeSample
from protocol.clock import ManualClock
from tests.support.domain import domain_ingestor, feed
from tests.support.live import running_api

MIN = timedelta(minutes=1)
H = timedelta(hours=1)


def local_midnight(day: int) -> datetime:
    """00:00 in Paris (UTC+1 in January) on 2026-01-``day``."""
    return datetime(2026, 1, day, tzinfo=UTC) - H


def readings(start: datetime, temps: Sequence[float]) -> list[FridgeSample]:
    return [FridgeSample(t=start + i * MIN, temp_c=t) for i, t in enumerate(temps)]


def fridge_month() -> list[list[FridgeSample]]:
    """One case per day, each ending back in range."""
    return [
        # Jan 8: a whole day at 5 °C, up to the next midnight: ok.
        readings(local_midnight(8), [5.0] * 1441),
        # Jan 10: exactly 10 h above 8 °C from 07:00 (after a reading in range): no heat alarm.
        readings(local_midnight(10) + 7 * H - MIN, [5.0] + [9.0] * 600 + [5.0] * 10),
        # Jan 12: 10 h 01 above 8 °C: heat alarm.
        readings(local_midnight(12) + 7 * H, [9.0] * 601 + [5.0] * 10),
        # Jan 14: -0.5 °C for 60 min: freeze alarm.
        readings(local_midnight(14) + 7 * H, [-0.5] * 60 + [4.0] * 10),
        # Jan 16: -0.5 °C for 59 min: cold, not a freeze alarm.
        readings(local_midnight(16) + 7 * H, [-0.5] * 59 + [4.0] * 10),
    ]


def derive(store: Store, itinerary: Itinerary) -> None:
    domain, ingestor = domain_ingestor(
        store, itinerary, DomainSettings(), ManualClock(datetime(2026, 1, 20, tzinfo=UTC))
    )
    batches = [
        FridgeBatch(vehicle="vexin-01", seq=i, samples=samples)
        for i, samples in enumerate(fridge_month())
    ]
    for b in batches:
        assert feed(ingestor, [b], b.samples[-1].t)[0].status == "stored"
    domain.catch_up()


def test_the_rules_boundaries_as_the_api_shows_them(store: Store, itinerary: Itinerary) -> None:
    derive(store, itinerary)
    with running_api(store, token="coord-eure-token") as api:
        alarms = api.get("/api/v1/coldchain/alarms", params={"vehicle": "vexin-01"}).json()
        report = api.get(
            "/api/v1/reports/coldchain",
            params={"vehicle": "vexin-01", "from": "2026-01-08", "to": "2026-01-16"},
        ).json()
    by_day: dict[str, list[str]] = {}
    for a in alarms:
        by_day.setdefault(a["start"][:10], []).append(a["kind"])
    # Jan 10 06:00 UTC is 07:00 in Paris.
    assert sorted(by_day["2026-01-10"]) == ["early_warning"]
    assert sorted(by_day["2026-01-12"]) == ["early_warning", "heat"]
    assert by_day["2026-01-14"] == ["freeze"]
    assert "2026-01-16" not in by_day
    heat = next(a for a in alarms if a["kind"] == "heat")
    assert heat["duration_min"] == pytest.approx(601)
    assert heat["raised_at"] == "2026-01-12T16:01:00Z"
    assert heat["key"] == "heat@2026-01-12T06:00:00+00:00"
    assert heat["ongoing"] is False and heat["acknowledged"] is None

    days = {d["date"]: d for d in report["days"]}
    assert len(days) == 9
    assert days["2026-01-08"]["status"] == "ok"
    assert days["2026-01-08"]["in_range_min"] == pytest.approx(1440)
    assert days["2026-01-08"]["samples"] == 1440
    assert (days["2026-01-10"]["status"], days["2026-01-10"]["heat_alarm"]) == ("warning", False)
    assert days["2026-01-10"]["above_min"] == pytest.approx(600)
    assert (days["2026-01-12"]["status"], days["2026-01-12"]["heat_alarm"]) == ("alarm", True)
    assert days["2026-01-12"]["max_c"] == 9.0
    assert days["2026-01-14"]["freeze_alarm"] is True
    assert (days["2026-01-16"]["status"], days["2026-01-16"]["freeze_alarm"]) == (
        "incomplete",
        False,
    )
    assert days["2026-01-16"]["below_min"] == pytest.approx(59)
    # A day without a single reading is no data, never fine.
    assert days["2026-01-11"] == days["2026-01-11"] | {"status": "no_data", "recorded": False}
    assert days["2026-01-11"]["no_data_min"] == pytest.approx(1440)
    assert report["summary"] == {
        "days": 9,
        "in_range": 1,
        "incomplete": 1,
        "no_data": 4,
        "with_warnings": 1,
        "with_alarms": 2,
    }
    assert report["rules"]["heat_alarm_after_h"] == 10.0
    assert len(report["alarms"]) == 4


def test_alarms_are_acknowledged_once_with_who_when_and_what(
    store: Store, itinerary: Itinerary
) -> None:
    derive(store, itinerary)
    with running_api(store, token="coord-eure-token") as api:
        heat = next(
            a
            for a in api.get("/api/v1/coldchain/alarms", params={"vehicle": "vexin-01"}).json()
            if a["kind"] == "heat"
        )
        path = f"/api/v1/coldchain/alarms/{heat['id']}/ack"
        before = datetime.now(UTC)
        missing = api.post(path, json={})
        assert missing.status_code == 422
        for bad in ("vaccins\x00", "\x07", "x" * 1001):
            assert api.post(path, json={"comment": bad}).status_code == 422
        done = api.post(path, json={"comment": "insulin quarantined, pharmacist told"})
        assert done.status_code == 200, done.text
        ack = done.json()["acknowledged"]
        assert ack["by"] == "coord-eure"
        assert ack["comment"] == "insulin quarantined, pharmacist told"
        at = datetime.fromisoformat(ack["at"])
        assert before - timedelta(seconds=1) <= at <= datetime.now(UTC) + timedelta(seconds=1)
        again = api.post(path, json={"comment": "me too"})
        assert again.status_code == 409
        assert "already acknowledged by coord-eure" in again.json()["detail"]
        assert (
            api.post("/api/v1/coldchain/alarms/999999/ack", json={"comment": "x"}).status_code
            == 404
        )
        listed = api.get("/api/v1/coldchain/alarms", params={"vehicle": "vexin-01"}).json()
        assert (
            next(a for a in listed if a["id"] == heat["id"])["acknowledged"]["by"] == "coord-eure"
        )
    with running_api(store, token="eng-eure-token") as api:
        refused = api.post(path, json={"comment": "engineers only read"})
        assert refused.status_code == 403
    with running_api(store, token="fm-caux-token") as api:
        # Another operator's alarm is not shown to exist.
        assert api.post(path, json={"comment": "not mine"}).status_code == 404
        assert api.get("/api/v1/coldchain/alarms").json() == []


def test_the_pharmacy_files_as_csv(store: Store, itinerary: Itinerary) -> None:
    derive(store, itinerary)
    with running_api(store) as api:
        heat = next(a for a in api.get("/api/v1/coldchain/alarms").json() if a["kind"] == "heat")
        api.post(f"/api/v1/coldchain/alarms/{heat['id']}/ack", json={"comment": "=1+1 checked"})
        days = api.get(
            "/api/v1/reports/coldchain",
            params={
                "vehicle": "vexin-01",
                "from": "2026-01-08",
                "to": "2026-01-12",
                "format": "csv",
            },
        )
        alarms = api.get(
            "/api/v1/coldchain/alarms",
            params={
                "vehicle": "vexin-01",
                "from": "2026-01-12",
                "to": "2026-01-12",
                "format": "csv",
            },
        )
    assert days.headers["content-type"].startswith("text/csv")
    assert "fridge-vexin-01-2026-01-08-2026-01-12.csv" in days.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(days.text)))
    assert tuple(rows[0]) == DAILY_COLUMNS
    assert [r["date"] for r in rows] == [f"2026-01-{d:02d}" for d in range(8, 13)]
    first = rows[0]
    assert (first["fridge"], first["timezone"], first["status"]) == (
        "vexin-01",
        "Europe/Paris",
        "ok",
    )
    assert (first["in_range_min"], first["no_data_min"], first["min_c"]) == (
        "1440.0",
        "0.0",
        "5.00",
    )
    assert rows[4]["heat_alarm"] == "true"

    log = list(csv.DictReader(io.StringIO(alarms.text)))
    assert tuple(log[0]) == ALARM_LOG_COLUMNS
    assert sorted(r["alarm"] for r in log) == ["early_warning", "heat"]
    row = next(r for r in log if r["alarm"] == "heat")
    assert (row["start_utc"], row["end_utc"]) == ("2026-01-12T06:00:00Z", "2026-01-12T16:01:00Z")
    assert row["start_local"] == "2026-01-12T07:00:00+01:00"
    assert (row["duration_min"], row["peak_c"]) == ("601.0", "9.00")
    assert row["acknowledged_by"] == "admin"
    # A comment that a spreadsheet would run as a formula is kept as text.
    assert row["ack_comment"] == "'=1+1 checked"


def test_the_30_day_history_like_a_logger(store: Store, itinerary: Itinerary) -> None:
    derive(store, itinerary)
    with running_api(store, token="fm-caux-token") as api:
        assert (
            api.get("/api/v1/coldchain/history", params={"vehicle": "vexin-01"}).status_code == 404
        )
    with running_api(store) as api:
        body = api.get(
            "/api/v1/coldchain/history", params={"vehicle": "vexin-01", "last_day": "2026-01-20"}
        ).json()
    days = body["days"]
    assert len(days) == 30
    assert (days[0]["date"], days[-1]["date"]) == ("2025-12-22", "2026-01-20")
    statuses = {d["date"]: d["status"] for d in days}
    assert statuses["2026-01-08"] == "ok"
    assert statuses["2026-01-12"] == "alarm"
    assert statuses["2026-01-10"] == "warning"
    assert statuses["2026-01-20"] == "no_data"
    assert next(d for d in days if d["date"] == "2026-01-14")["freeze_alarm"] is True
