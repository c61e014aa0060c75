"""Coordinators' visits API over HTTP, on a day the ingest has tracked (SQLite, PostgreSQL)."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from ingest.itinerary import Itinerary, Slot
from ingest.points import lines_of
from ingest.punctuality.config import PunctualitySettings
from ingest.punctuality.tracker import PunctualityTracker
from ingest.store import Store
from tests.ingest.punctuality.test_tracker import MONDAY, ingest, vexin_monday
from tests.support.live import ADMIN_TOKEN, running_api
from tests.support.mosquitto import free_port
from tests.support.wait import wait_for

COORD = {"Authorization": "Bearer coord-eure-token"}
FM_CAUX = {"Authorization": "Bearer fm-caux-token"}
ENG = {"Authorization": "Bearer eng-eure-token"}
VESLY = "vexin-01:2026-11-16:vesly"
HACQUEVILLE = "vexin-01:2026-11-16:hacqueville"
FRIDAY_AHEAD = "vexin-01:2026-11-27:hacqueville"  # after today (the tests' 'now' is real)


@contextmanager
def serving(app: FastAPI) -> Iterator[httpx.Client]:
    """``app`` on uvicorn on a free port, called with the test admin's token."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=10, what="the API to start")
    base = f"http://127.0.0.1:{server.config.port}"
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as c:
            yield c
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def far_future_visit_is_pending() -> bool:
    return datetime.now(UTC) < datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


@pytest.fixture
def api(store: Store, itinerary: Itinerary) -> Iterator[httpx.Client]:
    tracker = PunctualityTracker(store, itinerary, PunctualitySettings(horizon_days=14))
    tracker.start(MONDAY, past_days=1)
    ingest(store, tracker, vexin_monday(itinerary))
    with running_api(store) as client:
        yield client


def visits_of(api: httpx.Client, day: str, **params: str) -> dict[str, dict[str, Any]]:
    response = api.get("/api/v1/visits", params={"date": day, **params})
    assert response.status_code == 200, response.text
    return {v["id"]: v for v in response.json()["visits"]}


def test_a_tracked_day_lists_statuses_delays_and_unscheduled_stops(api: httpx.Client) -> None:
    body = api.get("/api/v1/visits", params={"date": "2026-11-16"}).json()
    visits = {v["id"]: v for v in body["visits"]}
    assert body["date"] == "2026-11-16"
    assert [v["id"] for v in body["visits"]][:2] == ["caux-01:2026-11-16:terres-de-caux", VESLY]

    vesly = visits[VESLY]
    assert vesly["status"] == "on_time"
    assert vesly["delay_min"] == pytest.approx(3.0, abs=0.1)
    assert vesly["scheduled_arrival"] == "2026-11-16T08:00:00Z"
    assert vesly["arrival"] == vesly["detected_arrival"]
    assert vesly["arrival_source"] == "detected"
    assert vesly["confirmed_arrival"] is None
    assert vesly["stop_name"] == "Vesly"
    hacqueville = visits[HACQUEVILLE]
    assert hacqueville["status"] == "late"
    assert hacqueville["delay_min"] == pytest.approx(12.0, abs=0.1)
    for caux in ("caux-01:2026-11-16:terres-de-caux", "caux-01:2026-11-16:allouville-bellefosse"):
        assert visits[caux]["status"] == "missed"
        assert visits[caux]["delay_min"] is None
    stops = [(u["vehicle"], u["stop"]) for u in body["unscheduled_stops"]]
    assert ("vexin-01", "bezu-saint-eloi") in stops

    assert set(visits_of(api, "2026-11-16", vehicle="caux-01")) == {
        "caux-01:2026-11-16:terres-de-caux",
        "caux-01:2026-11-16:allouville-bellefosse",
    }
    assert visits_of(api, "2026-11-14") == {}  # a Saturday
    # The web app's board asks for the day's visits.
    assert "/api/v1/visits?date=" in api.get("/static/app/pages/board.js").text


def test_callers_see_their_operators_visits_only(api: httpx.Client) -> None:
    coord = api.get("/api/v1/visits", params={"date": "2026-11-16"}, headers=COORD).json()
    assert {v["vehicle"] for v in coord["visits"]} == {"vexin-01"}
    fm = api.get("/api/v1/visits", params={"date": "2026-11-16"}, headers=FM_CAUX).json()
    assert {v["vehicle"] for v in fm["visits"]} == {"caux-01"}
    assert fm["unscheduled_stops"] == []
    other = api.get(
        "/api/v1/visits", params={"date": "2026-11-16", "vehicle": "caux-01"}, headers=COORD
    )
    assert other.status_code == 404
    assert other.json()["detail"] == "unknown vehicle 'caux-01'"
    assert api.get(f"/api/v1/visits/{quote(VESLY)}/history", headers=FM_CAUX).status_code == 404


def test_confirm_correct_and_history_keep_the_detection(api: httpx.Client) -> None:
    confirmed = api.post(f"/api/v1/visits/{VESLY}/confirm", headers=COORD)
    assert confirmed.status_code == 200, confirmed.text
    vesly = confirmed.json()
    assert vesly["confirmed_arrival"] == vesly["detected_arrival"]
    assert vesly["confirmed_by"] == "coord-eure"

    detected = visits_of(api, "2026-11-16")[HACQUEVILLE]["detected_arrival"]
    corrected = api.post(
        f"/api/v1/visits/{HACQUEVILLE}/correct",
        json={"arrival": "2026-11-16T14:05:00+01:00", "reason": "driver's log: GPS was off"},
        headers=COORD,
    )
    assert corrected.status_code == 200, corrected.text
    hacqueville = corrected.json()
    assert hacqueville["arrival"] == "2026-11-16T13:05:00Z"
    assert hacqueville["arrival_source"] == "corrected"
    assert hacqueville["detected_arrival"] == detected
    assert hacqueville["status"] == "on_time"  # +5 min: the band includes its ends
    assert hacqueville["delay_min"] == 5.0
    assert hacqueville["confirmed_arrival"] == "2026-11-16T13:05:00Z"

    history = api.get(f"/api/v1/visits/{HACQUEVILLE}/history").json()
    assert history["detected"]["arrival"] == detected
    assert history["detected"]["arrival_evidence"]["fixes"] >= 12
    assert history["detected"]["departure_evidence"]["max_distance_m"] > 200
    (change,) = history["changes"]
    assert change["kind"] == "correct"
    assert change["who"] == "coord-eure"
    assert change["reason"] == "driver's log: GPS was off"
    assert abs(datetime.fromisoformat(change["at"]) - datetime.now(UTC)) < timedelta(minutes=1)
    # A second correction supersedes the first; both are kept.
    api.post(
        f"/api/v1/visits/{HACQUEVILLE}/correct",
        json={"arrival": "2026-11-16T13:20:00Z", "reason": "checked with the GP"},
        headers=COORD,
    )
    history = api.get(f"/api/v1/visits/{HACQUEVILLE}/history", headers=ENG).json()
    assert [c["arrival"] for c in history["changes"]] == [
        "2026-11-16T13:05:00Z",
        "2026-11-16T13:20:00Z",
    ]
    assert history["visit"]["status"] == "late"
    assert history["visit"]["detected_arrival"] == detected


BAD_CHANGES: list[tuple[str, dict[str, str] | None, int, str]] = [
    (f"{HACQUEVILLE}/correct", {"arrival": "2026-11-16T13:05:00Z"}, 422, "reason"),
    (
        f"{HACQUEVILLE}/correct",
        {"arrival": "2026-11-16T13:05:00Z", "reason": "   "},
        422,
        "a correct needs a reason",
    ),
    (
        f"{HACQUEVILLE}/correct",
        {"arrival": "2026-11-18T13:05:00Z", "reason": "typo"},
        422,
        "more than 12 h from the visit's scheduled times",
    ),
    (
        f"{HACQUEVILLE}/correct",
        {"arrival": "2026-11-16T13:05:00", "reason": "no offset"},
        422,
        "timezone",
    ),
    (
        f"{HACQUEVILLE}/correct",
        {
            "arrival": "2026-11-16T13:05:00Z",
            "departure": "2026-11-16T13:00:00Z",
            "reason": "x",
        },
        422,
        "is not after arrival",
    ),
    (
        # "+05:00" typed for "+01:00": 09:05 UTC, far before the visit's window opens.
        f"{HACQUEVILLE}/correct",
        {"arrival": "2026-11-16T14:05:00+05:00", "reason": "driver's log"},
        422,
        "outside the visit's matching window (2026-11-16 12:00 Europe/Paris (UTC+01:00)",
    ),
    (f"{HACQUEVILLE}/cancel", {"reason": "snow"}, 409, "took place"),
    (f"{HACQUEVILLE}/cancel", {}, 422, "reason"),
    ("vexin-01:2026-11-16:morgny/confirm", None, 404, "no visit"),
    ("caux-01:2026-11-16:terres-de-caux/cancel", {"reason": "x"}, 404, "no visit"),
    ("caux-01:2026-11-16:terres-de-caux/confirm", None, 404, "no visit"),
]


def test_bad_changes_get_a_clear_error_and_change_nothing(api: httpx.Client) -> None:
    for path, body, status, words in BAD_CHANGES:
        response = api.post(f"/api/v1/visits/{path}", json=body, headers=COORD)
        assert response.status_code == status, (path, body, response.text)
        assert words in str(response.json()["detail"]), (path, response.text)
    assert api.get(f"/api/v1/visits/{HACQUEVILLE}/history").json()["changes"] == []


def test_cancel_then_nothing_more_and_roles(api: httpx.Client) -> None:
    for headers, status in ((FM_CAUX, 403), (ENG, 403)):
        refused = api.post(
            f"/api/v1/visits/{FRIDAY_AHEAD}/cancel", json={"reason": "x"}, headers=headers
        )
        assert refused.status_code == status
        assert "may not do this" in refused.json()["detail"]
    if far_future_visit_is_pending():
        unconfirmable = api.post(f"/api/v1/visits/{FRIDAY_AHEAD}/confirm", headers=COORD)
        assert unconfirmable.status_code == 409
        assert "no arrival to confirm" in unconfirmable.json()["detail"]
    cancelled = api.post(
        f"/api/v1/visits/{FRIDAY_AHEAD}/cancel", json={"reason": "GP on sick leave"}, headers=COORD
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["cancelled_reason"] == "GP on sick leave"
    assert cancelled.json()["cancelled_by"] == "coord-eure"
    again = api.post(f"/api/v1/visits/{FRIDAY_AHEAD}/cancel", json={"reason": "x"}, headers=COORD)
    assert again.status_code == 409
    assert "is cancelled (GP on sick leave)" in again.json()["detail"]
    assert api.post(f"/api/v1/visits/{FRIDAY_AHEAD}/confirm", headers=COORD).status_code == 409
    # The admin acts on every operator's visits.
    caux = api.post(
        "/api/v1/visits/caux-01:2026-11-27:cany-barville/cancel", json={"reason": "strike"}
    )
    assert caux.status_code == 200
    assert caux.json()["cancelled_by"] == "admin"


def test_listing_needs_a_valid_date(api: httpx.Client) -> None:
    assert api.get("/api/v1/visits").status_code == 422
    bad = api.get("/api/v1/visits", params={"date": "16/11/2026"})
    assert bad.status_code == 422
    assert api.get("/api/v1/visits", params={"date": "2026-11-16", "vehicle": "bus-9"}).json()[
        "detail"
    ] == ("unknown vehicle 'bus-9'")


def test_punctuality_report_in_json_and_csv(api: httpx.Client) -> None:
    params = {"from": "2026-11-16", "to": "2026-11-16", "group_by": "vehicle"}
    report = api.get("/api/v1/reports/punctuality", params=params).json()
    assert report["from"] == "2026-11-16"
    groups = {g["group"]: g for g in report["groups"]}
    vexin = groups["vexin-01"]
    assert (vexin["visits"], vexin["held"], vexin["on_time"], vexin["late"]) == (2, 2, 1, 1)
    assert vexin["on_time_rate"] == 0.5
    assert vexin["mean_delay_min"] == pytest.approx(7.5, abs=0.1)
    assert vexin["p90_delay_min"] == pytest.approx(3 + 0.9 * 9, abs=0.1)
    caux = groups["caux-01"]
    assert (caux["missed"], caux["on_time_rate"], caux["mean_delay_min"]) == (2, 0.0, None)
    assert report["total"]["group"] == "all"
    assert report["total"]["on_time_rate"] == 0.25

    by_weekday = api.get(
        "/api/v1/reports/punctuality", params={**params, "group_by": "weekday"}, headers=COORD
    ).json()
    assert [(g["group"], g["visits"]) for g in by_weekday["groups"]] == [("monday", 2)]

    as_csv = api.get("/api/v1/reports/punctuality", params={**params, "format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["group"] for r in rows] == ["caux-01", "vexin-01", "all"]
    assert rows[1]["on_time_rate"] == "0.5"
    assert rows[0]["mean_delay_min"] == ""
    by_accept = api.get(
        "/api/v1/reports/punctuality", params=params, headers={"Accept": "text/csv"}
    )
    assert by_accept.text == as_csv.text


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"from": "2026-11-17", "to": "2026-11-16"}, "is before 'from'"),
        ({"from": "2026-01-01", "to": "2027-06-01"}, "ask for 400 at most"),
        ({"from": "2026-11-16", "to": "2026-11-16", "group_by": "colour"}, "group_by"),
        ({"from": "2026-11-16"}, "to"),
    ],
)
def test_bad_report_requests(api: httpx.Client, params: dict[str, str], words: str) -> None:
    response = api.get("/api/v1/reports/punctuality", params=params)
    assert response.status_code == 422
    assert words in str(response.json()["detail"])


@pytest.mark.parametrize(
    ("day", "utc_arrival"),
    [
        (date(2026, 3, 29), "2026-03-29T07:00:00Z"),  # clocks went forward at 02:00
        (date(2026, 10, 25), "2026-10-25T08:00:00Z"),  # clocks went back at 03:00
        (date(2026, 10, 24), "2026-10-24T07:00:00Z"),
    ],
)
def test_visits_on_daylight_saving_days_keep_their_local_hours(
    store: Store, itinerary: Itinerary, day: date, utc_arrival: str
) -> None:
    weekend = [
        Slot(vehicle="vexin-01", weekday=w, stop="gisors", arrive="09:00", depart="12:00")
        for w in (6, 7)
    ]
    with_weekend = itinerary.model_copy(update={"slots": [*itinerary.slots, *weekend]})
    PunctualityTracker(store, with_weekend, PunctualitySettings(horizon_days=0)).start(
        day, past_days=0
    )
    with running_api(store) as api:
        (visit,) = visits_of(api, day.isoformat()).values()
        assert visit["scheduled_arrival"] == utc_arrival
        departure = datetime.fromisoformat(visit["scheduled_departure"])
        assert departure - datetime.fromisoformat(utc_arrival) == timedelta(hours=3)
        assert visit["status"] == "missed"


def test_a_pending_visit_shows_its_eta(store: Store, itinerary: Itinerary) -> None:
    from api.app import create_app
    from protocol.clock import ManualClock
    from tests.ingest.punctuality.days import Call, batches_of, simulated_day
    from tests.ingest.punctuality.test_tracker import utc
    from tests.support.live import TEST_USERS

    tracker = PunctualityTracker(store, itinerary, PunctualitySettings(eta_every_s=0))
    tracker.start(MONDAY, past_days=1)
    calls = [Call("vesly", utc(8, 3), utc(11, 0)), Call("hacqueville", utc(13, 0), utc(16, 0))]
    position_at = utc(12, 55)
    day = [s for s in simulated_day(itinerary, "vexin-01", calls, step_s=10) if s.t <= position_at]
    ingest(store, tracker, batches_of("vexin-01", day, 500))
    # The API's clock set to that moment, as an engineer replaying the day would.
    app = create_app(store, TEST_USERS)
    app.state.clock = ManualClock(position_at + timedelta(seconds=30))
    with serving(app) as client:
        visits = {
            v["id"]: v
            for v in client.get("/api/v1/visits", params={"date": "2026-11-16"}).json()["visits"]
        }
    hacqueville = visits[HACQUEVILLE]
    assert hacqueville["status"] == "pending"
    assert hacqueville["eta_from"] == "2026-11-16T12:55:00Z"
    eta = datetime.fromisoformat(hacqueville["eta"])
    assert position_at < eta < position_at + timedelta(minutes=30)
    assert hacqueville["eta_delay_min"] == pytest.approx(
        (eta - calls[1].arrival).total_seconds() / 60, abs=0.1
    )
    assert 0 < hacqueville["eta_distance_km"] < 15
    # Driving to it: a state, an interval around the ETA, and where the ETA comes from.
    assert hacqueville["eta_state"] in {"early", "on_time"}
    assert hacqueville["eta_source"] == "position"
    earliest = datetime.fromisoformat(hacqueville["eta_earliest"])
    latest = datetime.fromisoformat(hacqueville["eta_latest"])
    assert earliest < eta < latest
    assert visits[VESLY]["eta"] is None  # held
    assert visits[VESLY]["eta_state"] is None


def test_a_coordinators_correction_is_queued_for_the_time_series(
    store: Store, itinerary: Itinerary, database_url: str
) -> None:
    tracker = PunctualityTracker(store, itinerary)
    tracker.start(MONDAY, past_days=1)
    ingest(store, tracker, vexin_monday(itinerary))
    # The API's own store on the same database, as api.toml's timeseries = true opens it.
    api_store = Store.open(database_url, points=lines_of)
    try:
        with running_api(api_store) as api:
            corrected = api.post(
                f"/api/v1/visits/{HACQUEVILLE}/correct",
                json={"arrival": "2026-11-16T14:05:00+01:00", "reason": "driver's log"},
                headers=COORD,
            )
            assert corrected.status_code == 200, corrected.text
    finally:
        api_store.close()
    (line,) = [line for _, line in store.pending_points(100)]
    scheduled = datetime(2026, 11, 16, 13, 0, tzinfo=UTC)
    assert line.startswith("visit,stop=hacqueville,vehicle=vexin-01 ")
    assert line.endswith(f" {int(scheduled.timestamp() * 1000)}")
    assert 'arrival_source="corrected"' in line and ",delay_s=300," in line
    assert ',status="on_time",' in line


def test_a_mistyped_offset_is_refused_then_recorded_when_forced(api: httpx.Client) -> None:
    typo = {"arrival": "2026-11-16T14:05:00+05:00", "reason": "driver's log"}
    refused = api.post(f"/api/v1/visits/{HACQUEVILLE}/correct", json=typo, headers=COORD)
    assert refused.status_code == 422
    assert "send force: true" in refused.json()["detail"]
    forced = api.post(
        f"/api/v1/visits/{HACQUEVILLE}/correct", json={**typo, "force": True}, headers=COORD
    )
    assert forced.status_code == 200, forced.text
    assert forced.json()["arrival"] == "2026-11-16T09:05:00Z"
    assert forced.json()["status"] == "early"


def test_confirming_twice_keeps_one_confirmation_and_its_note(api: httpx.Client) -> None:
    first = api.post(
        f"/api/v1/visits/{VESLY}/confirm", json={"note": "seen by the GP"}, headers=COORD
    )
    assert first.status_code == 200, first.text
    again = api.post(f"/api/v1/visits/{VESLY}/confirm", json={"note": "again"}, headers=COORD)
    assert again.status_code == 200, again.text
    assert again.json()["confirmed_by"] == first.json()["confirmed_by"] == "coord-eure"
    assert again.json()["confirmed_arrival"] == first.json()["confirmed_arrival"]
    (change,) = api.get(f"/api/v1/visits/{VESLY}/history").json()["changes"]
    assert (change["kind"], change["note"], change["reason"]) == (
        "confirm",
        "seen by the GP",
        None,
    )
    counted = api.post(
        f"/api/v1/visits/{VESLY}/attendance",
        json={"patients_seen": 14, "note": "flu jabs"},
        headers=COORD,
    )
    assert counted.status_code == 200, counted.text
    changes = api.get(f"/api/v1/visits/{VESLY}/history").json()["changes"]
    assert [(c["kind"], c["note"], c["reason"]) for c in changes] == [
        ("confirm", "seen by the GP", None),
        ("attendance", "flu jabs", None),
    ]


def test_an_arrival_inside_a_gps_outage_is_shown_as_estimated(
    store: Store, itinerary: Itinerary
) -> None:
    from tests.ingest.punctuality.days import batches_of
    from tests.ingest.punctuality.test_tracker import utc

    tracker = PunctualityTracker(store, itinerary)
    tracker.start(MONDAY, past_days=1)
    # No fix from 4 min before the bus reaches Hacqueville (13:12) to 6 min after.
    samples = [
        s for b in vexin_monday(itinerary) for s in b.samples if not utc(13, 8) <= s.t < utc(13, 18)
    ]
    ingest(store, tracker, batches_of("vexin-01", samples, 500))
    with running_api(store) as api:
        hacqueville = visits_of(api, "2026-11-16")[HACQUEVILLE]
        history = api.get(f"/api/v1/visits/{HACQUEVILLE}/history").json()
        vesly = visits_of(api, "2026-11-16")[VESLY]
    earliest = datetime.fromisoformat(hacqueville["arrival_earliest"])
    latest = datetime.fromisoformat(hacqueville["arrival_latest"])
    arrival = datetime.fromisoformat(hacqueville["arrival"])
    assert hacqueville["arrival_estimated"] is True
    assert earliest <= utc(13, 12) <= latest
    assert earliest <= arrival <= latest
    assert latest >= utc(13, 18)  # the first fix after the outage
    assert abs(arrival - utc(13, 12)) <= timedelta(seconds=90)
    # Scheduled 14:00 local (13:00 UTC): every arrival in the bounds is late.
    assert hacqueville["possible_statuses"] == ["late"]
    assert hacqueville["status_certain"] is True and hacqueville["status"] == "late"
    assert history["detected"]["arrival_estimated"] is True
    assert history["detected"]["arrival_earliest"] == hacqueville["arrival_earliest"]
    assert vesly["arrival_estimated"] is False and vesly["arrival_earliest"] is None
    assert vesly["possible_statuses"] == [vesly["status"]]
