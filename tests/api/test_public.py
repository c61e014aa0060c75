"""The public page, its embedded view and calendars: what patients and partners see
without signing in, and what they must never see."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import icalendar
import pytest

from api.app import create_app
from api.routes.public import PublicLimits, event_uid
from ingest.domain import IngestDomain
from ingest.itinerary import Itinerary
from ingest.punctuality.storage import PunctualityStore
from ingest.punctuality.tracker import PunctualityTracker
from ingest.settings import DomainSettings
from ingest.store import Store
from protocol.clock import ManualClock
from tests.ingest.punctuality.test_tracker import MONDAY, ingest, utc, vexin_monday
from tests.support.live import TEST_USERS, serving

PARIS = ZoneInfo("Europe/Paris")
NOW = utc(13, 5)  # 14:05 in Paris: Vesly held, the bus on its way to Hacqueville
SECRET_REASON = "arrêt maladie du médecin"
PUBLIC_MESSAGE = "Passage reporté à jeudi, mêmes horaires <b>"


@dataclass
class Public:
    url: str
    store: Store
    cancelled: str


def serve(store: Store, limits: PublicLimits | None = None) -> Iterator[str]:
    app = create_app(store, TEST_USERS, clock=ManualClock(NOW), public_limits=limits)
    with serving(app) as url:
        yield url


@pytest.fixture
def world(store: Store, itinerary: Itinerary) -> Iterator[Public]:
    tracker = PunctualityTracker(store, itinerary)
    tracker.start(MONDAY, past_days=1)
    ingest(store, tracker, [b for b in vexin_monday(itinerary) if b.samples[-1].t <= NOW])
    IngestDomain(store, itinerary, DomainSettings())  # records the operators' names
    db = PunctualityStore(store)
    tuesday = db.planned_visits("vexin-01", MONDAY + timedelta(days=1))[0]
    with serving(create_app(store, TEST_USERS, clock=ManualClock(NOW))) as url:
        r = httpx.post(
            f"{url}/api/v1/visits/{tuesday.id}/cancel",
            json={"reason": SECRET_REASON, "public_message": PUBLIC_MESSAGE},
            headers={"Authorization": "Bearer coord-eure-token"},
        )
        assert r.status_code == 200, r.text
        yield Public(url, store, tuesday.id)


def test_the_page_shows_the_week_and_todays_status_and_nothing_private(
    world: Public,
) -> None:
    r = httpx.get(f"{world.url}/public/doct-eure")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    page = r.text
    assert '<html lang="fr">' in page
    assert "Doct&#39;Eure (Hôpital de la Musse)" in page
    assert "lundi 16 novembre" in page and "mardi 17 novembre" in page
    today = page.split('id="semaine"')[0]
    # Vesly was held: it left when the coordinators' board says.
    visits = httpx.get(
        f"{world.url}/api/v1/visits",
        params={"date": MONDAY.isoformat()},
        headers={"Authorization": "Bearer coord-eure-token"},
    ).json()["visits"]
    left = next(v["departure"] for v in visits if v["stop"] == "vesly")
    left_at = datetime.fromisoformat(left).astimezone(PARIS).strftime("%H:%M")
    vesly = re.search(
        r"Vesly</span> —\s*<span class=\"hours\">([^<]+)</span><br>\s*"
        r"<span class=\"status (\w+)\">([^<]+)<",
        today,
    )
    assert vesly is not None, today
    assert vesly.group(2) == "left" and vesly.group(3) == f"Passé : reparti à {left_at}"
    # Hacqueville: on the way, with the ETA the tracker stored, if it is one to trust.
    row = next(
        v
        for v in PunctualityStore(world.store).visits_between(MONDAY, MONDAY)
        if v.stop == "hacqueville"
    )
    hacqueville = re.search(
        r"Hacqueville</span>.*?<span class=\"status (\w+)\">([^<]+)<", today, flags=re.S
    )
    assert hacqueville is not None
    if (
        row.eta is not None
        and row.eta_state in ("on_time", "early", "late")
        and (row.eta_source in ("position", "history"))
    ):
        eta = row.eta.astimezone(PARIS).strftime("%H:%M")
        assert hacqueville.group(2).startswith(f"En route : arrivée prévue vers {eta}")
    else:
        assert hacqueville.group(2) == "Prévu"
    # The cancelled Tuesday shows as cancelled, without the coordinator's reason.
    assert "Annulé" in page.split('id="semaine"')[1]
    for private in (SECRET_REASON, "vexin-01", "coord-eure", "49.", "1.6", "patients vus"):
        assert private not in page, private


def test_the_page_is_cached_and_cannot_be_framed(world: Public) -> None:
    first = httpx.get(f"{world.url}/public/doct-eure")
    assert first.headers["cache-control"] == "public, max-age=30"
    etag = first.headers["etag"]
    again = httpx.get(f"{world.url}/public/doct-eure", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert "frame-ancestors 'none'" in first.headers["content-security-policy"]
    embed = httpx.get(f"{world.url}/public/doct-eure/embed")
    assert embed.status_code == 200
    assert "frame-ancestors 'none'" in embed.headers["content-security-policy"]


def test_the_embedded_view_may_be_framed_by_the_sites_allowed(
    store: Store, itinerary: Itinerary
) -> None:
    IngestDomain(store, itinerary, DomainSettings())
    limits = PublicLimits(frame_ancestors=("https://www.gisors.fr",))
    for url in serve(store, limits):
        embed = httpx.get(f"{url}/public/doct-eure/embed")
        assert "frame-ancestors https://www.gisors.fr" in embed.headers["content-security-policy"]
        assert "header, footer { display: none; }" in embed.text


def test_unknown_operators_and_bad_names_are_404(store: Store, itinerary: Itinerary) -> None:
    IngestDomain(store, itinerary, DomainSettings())
    for url in serve(store):
        for name in ("nobody", "x" * 500, "doct-eure%00", "..%2F..", "%F0%9F%9A%91"):
            r = httpx.get(f"{url}/public/{name}")
            assert r.status_code == 404, (name, r.status_code)
        assert "aucun service" in httpx.get(f"{url}/public/nobody").json()["detail"]


def test_too_many_requests_are_refused_with_a_delay(store: Store, itinerary: Itinerary) -> None:
    IngestDomain(store, itinerary, DomainSettings())
    for url in serve(store, PublicLimits(per_minute=5)):
        codes = [httpx.get(f"{url}/public/doct-eure").status_code for _ in range(7)]
        assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]
        refused = httpx.get(f"{url}/public/doct-eure/passages.ics")
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 61


def test_calendars_carry_every_passage_and_the_cancellations(world: Public) -> None:
    r = httpx.get(f"{world.url}/public/doct-eure/passages.ics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/calendar")
    cal = icalendar.Calendar.from_ical(r.content)
    events = list(cal.walk("VEVENT"))
    db = PunctualityStore(world.store)
    today = NOW.astimezone(PARIS).date()
    expected = [
        v
        for v in db.visits_between(today - timedelta(days=7), today + timedelta(days=60))
        if v.operator == "doct-eure"
    ]
    assert len(events) == len(expected) > 5
    by_uid = {str(e["uid"]): e for e in events}
    cancelled = by_uid[event_uid(world.cancelled)]
    assert str(cancelled["status"]) == "CANCELLED"
    assert SECRET_REASON not in r.text
    some = by_uid[event_uid(expected[0].id)]
    assert some.decoded("dtstart") == expected[0].facts.scheduled_arrival
    assert str(some["location"]) == expected[0].stop_name
    # One stop's calendar holds that stop only.
    stop = httpx.get(f"{world.url}/public/doct-eure/arrets/vesly.ics")
    places = {str(e["location"]) for e in icalendar.Calendar.from_ical(stop.content).walk("VEVENT")}
    assert places == {"Vesly"}
    assert httpx.get(f"{world.url}/public/doct-eure/arrets/nowhere.ics").status_code == 404
    assert httpx.get(f"{world.url}/public/cpts-caux/arrets/vesly.ics").status_code == 404


def test_no_sign_in_is_needed_and_staff_routes_stay_closed(world: Public) -> None:
    assert httpx.get(f"{world.url}/public/doct-eure").status_code == 200
    assert httpx.get(f"{world.url}/api/v1/visits", params={"date": "2026-11-16"}).status_code == 401
    assert datetime.now(UTC) > NOW  # the page's clock is the app's, not the test machine's


COORDINATOR = {"Authorization": "Bearer coord-eure-token"}


def test_public_messages_show_on_the_page_and_in_the_calendars(world: Public) -> None:
    page = httpx.get(f"{world.url}/public/doct-eure").text
    assert "Passage reporté à jeudi, mêmes horaires &lt;b&gt;" in page  # escaped, not markup
    assert "<b>" not in page
    cal = icalendar.Calendar.from_ical(
        httpx.get(f"{world.url}/public/doct-eure/passages.ics").content
    )
    (cancelled,) = [e for e in cal.walk("VEVENT") if str(e["uid"]) == event_uid(world.cancelled)]
    assert str(cancelled["description"]) == PUBLIC_MESSAGE
    # A delay announced on Wednesday's visit, then withdrawn.
    db = PunctualityStore(world.store)
    wednesday = db.planned_visits("vexin-01", MONDAY + timedelta(days=2))[0]
    said = httpx.post(
        f"{world.url}/api/v1/visits/{wednesday.id}/notice",
        json={"public_message": "Le bus aura environ 30 min de retard"},
        headers=COORDINATOR,
    )
    assert said.status_code == 200 and said.json()["public_message"].startswith("Le bus aura")
    assert "Le bus aura environ 30 min de retard" in httpx.get(f"{world.url}/public/doct-eure").text
    gone = httpx.post(
        f"{world.url}/api/v1/visits/{wednesday.id}/notice",
        json={"public_message": ""},
        headers=COORDINATOR,
    )
    assert gone.status_code == 200 and gone.json()["public_message"] is None
    assert "Le bus aura" not in httpx.get(f"{world.url}/public/doct-eure").text
    again = httpx.post(
        f"{world.url}/api/v1/visits/{wednesday.id}/notice",
        json={"public_message": ""},
        headers=COORDINATOR,
    )
    assert again.status_code == 409
    history = httpx.get(
        f"{world.url}/api/v1/visits/{wednesday.id}/history", headers=COORDINATOR
    ).json()
    assert [c["public_message"] for c in history["changes"]] == [
        "Le bus aura environ 30 min de retard",
        "",
    ]


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("notice", {"public_message": "retard\x00"}),
        ("notice", {"public_message": "x" * 281}),
        ("notice", {"public_message": "ligne\x1bcachée"}),
        ("notice", {}),
        ("cancel", {"reason": "motif\x00", "public_message": "ok"}),
        ("cancel", {"reason": "motif", "public_message": "\x00"}),
        ("confirm", {"note": "\x00"}),
    ],
)
def test_bad_messages_are_refused_and_nothing_is_stored(
    world: Public, route: str, body: dict[str, object]
) -> None:
    db = PunctualityStore(world.store)
    thursday = db.planned_visits("vexin-01", MONDAY + timedelta(days=3))[0]
    r = httpx.post(
        f"{world.url}/api/v1/visits/{thursday.id}/{route}", json=body, headers=COORDINATOR
    )
    assert r.status_code == 422, r.text
    assert db.changes([thursday.id]) == {}


def test_no_public_response_carries_anything_staff_only(world: Public) -> None:
    """Every public address, walked after the staff have recorded what only they may see:
    a reason, patients seen, battery and fridge readings, staff and vehicle names."""
    db = PunctualityStore(world.store)
    vesly = next(v for v in db.visits_between(MONDAY, MONDAY) if v.stop == "vesly")
    seen = httpx.post(
        f"{world.url}/api/v1/visits/{vesly.id}/attendance",
        json={
            "patients_seen": 12,
            "note": "note interne de l'équipe",
            "consultations": {
                "by_profile": {"ald-sans-mt": 5, "avec-mt": 7},
                "sas_referred": 3,
                "offering": "dermatologie",
                "professionals": ["med-02"],
            },
        },
        headers=COORDINATOR,
    )
    assert seen.status_code == 200, seen.text
    staff_only = [
        SECRET_REASON,
        "note interne",
        "coord-eure",
        "fm-caux",
        "vexin-01",
        "Doct'Eure Vexin-Normand",  # the bus's label
        "soc",
        "fridge",
        "battery",
        "patients",
        "ald-sans-mt",
        "sans médecin traitant",
        "dermatologie",
        "med-02",
        "sas",
    ]
    addresses = [
        "/public/doct-eure",
        "/public/doct-eure/embed",
        "/public/doct-eure/passages.ics",
        "/public/doct-eure/arrets/vesly.ics",
        "/public/doct-eure/arrets/hacqueville.ics",
    ]
    for address in addresses:
        r = httpx.get(f"{world.url}{address}")
        assert r.status_code == 200, address
        text = r.text.replace("&#39;", "'")
        for word in staff_only:
            assert word.lower() not in text.lower(), (address, word)
    # The GTFS-realtime feeds, as protobuf and as JSON: their routes are the vehicles' ids,
    # as in the static GTFS export; nothing else of the staff's.
    for feed in ("trip-updates", "vehicle-positions", "alerts"):
        for form in ("protobuf", "json"):
            address = f"/public/doct-eure/gtfs-rt/{feed}"
            r = httpx.get(f"{world.url}{address}", params={"format": form})
            assert r.status_code == 200, address
            text = r.content.decode("utf-8", errors="replace")
            for word in staff_only:
                if word != "vexin-01":
                    assert word.lower() not in text.lower(), (address, form, word)
