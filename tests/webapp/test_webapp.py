"""The staff web app in a real browser (Debian's Chromium driven by Playwright) against a
real Mosquitto, the ingest (with its domain and the punctuality tracker) and the API over
HTTP: one set of servers for the whole module."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import paho.mqtt.client as mqtt
import pytest
import uvicorn
from paho.mqtt.enums import CallbackAPIVersion

from api.app import create_app
from api.auth import ApiUser, Role, hash_token
from firmware_config.agent import BrokerConfig
from ingest.alerts.notify_settings import NotificationSettings
from ingest.domain import IngestDomain
from ingest.itinerary import Itinerary
from ingest.pipeline import Ingestor
from ingest.punctuality.eta import Prediction
from ingest.punctuality.storage import PunctualityStore
from ingest.punctuality.tracker import PunctualityTracker
from ingest.reports.configuration import record_notification_settings
from ingest.services import accounts, audit
from ingest.settings import AlertSettings, DomainSettings
from ingest.store import Store
from ingest.subscriber import IngestSubscriber
from protocol import (
    Batch,
    FridgeBatch,
    GpsBatch,
    GpsSample,
    StatusBatch,
    StatusSample,
    encode,
    topic_for,
)
from tests.ingest.punctuality.days import Call, batches_of, simulated_day
from tests.support.actors import Admin
from tests.support.live import TEST_USERS
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.wait import wait_for
from tests.test_alerts_end_to_end import fridge_failure

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A coordinator of doct-eure who signs in with a password.
CLAIRE = "claire.dubois@eure.fr"
CLAIRE_PASSWORD = "une phrase de passe assez longue"


AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
PARIS = ZoneInfo("Europe/Paris")
# The browser runs in another zone than the itinerary's, so that any time or "today"
# taken from the browser instead of Paris shows.
BROWSER_ZONE = "Pacific/Kiritimati"
USERS = [
    *TEST_USERS,
    ApiUser(
        name="coord-eure-2",
        role=Role.COORDINATOR,
        operator="doct-eure",
        token_sha256=hash_token("coord-eure-2-token"),
    ),
    ApiUser(
        name="fm-eure",
        role=Role.FLEET_MANAGER,
        operator="doct-eure",
        token_sha256=hash_token("fm-eure-token"),
    ),
]
PAGES = [
    "carte",
    "trajet",
    "passages",
    "alertes",
    "frigo",
    "rapports/ponctualite",
    "rapports/empreinte",
    "rapports/froid",
    "rapports/financeur",
]


def paris(day: date, hh: int, mm: int) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=PARIS).astimezone(UTC)


def last_weekday_before(today: date, weekday: int, at_least_days: int) -> date:
    """The latest ``weekday`` (0 = Monday) at least ``at_least_days`` before today."""
    day = today - timedelta(days=at_least_days)
    while day.weekday() != weekday:
        day -= timedelta(days=1)
    return day


def last_dst_change(today: date) -> date:
    """The latest last-Sunday of March or October whose Monday after is before today."""
    for year in (today.year, today.year - 1):
        for month in (10, 3):
            last = date(year, month, 31)
            sunday = last - timedelta(days=(last.weekday() - 6) % 7)
            if sunday + timedelta(days=1) < today:
                return sunday
    raise AssertionError("no daylight-saving change found")


@dataclass
class World:
    base_url: str
    store: Store
    broker: Mosquitto
    monday: date
    dst_before: date
    dst_after: date
    screenshots: Path
    seq: dict[str, int]

    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None

    def start_api(self) -> None:
        port = int(self.base_url.rsplit(":", 1)[1])
        config = uvicorn.Config(
            create_app(self.store, USERS),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        server = self.server
        wait_for(lambda: server.started, what="the API started")

    def stop_api(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=10)

    def api(self, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    def publish(self, *batches: Batch) -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bus-{time.monotonic_ns()}")
        client.connect(self.broker.host, self.broker.port)
        client.loop_start()
        try:
            for b in batches:
                info = client.publish(topic_for(b.vehicle, b.stream), encode(b), qos=1)
                info.wait_for_publish(timeout=10)
                assert info.is_published()
        finally:
            client.loop_stop()
            client.disconnect()

    def drive(self, vehicle: str, lat: float, lon: float, course: float) -> None:
        """A GPS batch of the bus driving at 50 km/h, timed now."""
        self.seq[vehicle] = self.seq.get(vehicle, 100_000) + 1
        sample = GpsSample(
            t=datetime.now(UTC).replace(microsecond=0),
            lat=lat,
            lon=lon,
            speed_mps=13.9,
            course_deg=course,
            fix_mode=3,
            sats=9,
            hdop=0.9,
        )
        self.publish(GpsBatch(vehicle=vehicle, seq=self.seq[vehicle], samples=[sample]))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, itinerary: Itinerary) -> Iterator[World]:
    root = tmp_path_factory.mktemp("webapp")
    screenshots = tmp_path_factory.mktemp("screenshots")
    print(f"\nscreenshots of the web app: {screenshots}")
    broker = Mosquitto(root / "mosquitto").start()
    store = Store.open(f"sqlite:///{root / 'cloud.sqlite'}")
    store.load_fleet(itinerary)
    accounts.add(
        store,
        Admin("admin"),
        email=CLAIRE,
        name="Claire Dubois",
        role="coordinator",
        operator="doct-eure",
        password=CLAIRE_PASSWORD,
        now=datetime.now(UTC),
    )
    today = datetime.now(PARIS).date()
    monday = last_weekday_before(today, 0, 2)
    dst = last_dst_change(today)
    tracker = PunctualityTracker(store, itinerary)
    tracker.start(today, past_days=(today - monday).days + 1)
    tracker.materialise(dst - timedelta(days=2), dst + timedelta(days=1))
    domain = IngestDomain(store, itinerary, DomainSettings(alerts=AlertSettings(tick_s=0.2)))
    ingestor = Ingestor(store, observers=[*domain.observers, tracker])
    subscriber = IngestSubscriber(ingestor, BrokerConfig(url=broker.url, client_id="ingest-web"))
    domain.start()
    subscriber.start()
    port = free_port()
    w = World(
        base_url=f"http://127.0.0.1:{port}",
        store=store,
        broker=broker,
        monday=monday,
        dst_before=dst - timedelta(days=2),
        dst_after=dst + timedelta(days=1),
        screenshots=screenshots,
        seq={},
    )
    w.start_api()
    try:
        assert subscriber.connected.wait(10)
        # vexin-01's Monday: Vesly 3 min late, Hacqueville 12 min late (inside an outage).
        day = simulated_day(
            itinerary,
            "vexin-01",
            [
                Call("vesly", paris(monday, 9, 3), paris(monday, 11, 58)),
                Call("hacqueville", paris(monday, 14, 12), paris(monday, 16, 55)),
            ],
            step_s=15,
        )
        # No fix from 5 min before Hacqueville until 4 min after: an arrival to estimate.
        outage = (paris(monday, 14, 7), paris(monday, 14, 16))
        day = [s for s in day if not outage[0] <= s.t < outage[1]]
        # caux-01's fridge fails this morning: an early warning, then a heat alarm.
        fridge = fridge_failure(datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3))
        w.publish(
            *batches_of("vexin-01", day, 500),
            *[
                FridgeBatch(vehicle="caux-01", seq=i, samples=fridge[i * 10 : i * 10 + 10])
                for i in range(7)
            ],
        )
        w.drive("vexin-01", 49.2411, 1.6333, 90.0)
        w.drive("caux-01", 49.6178, 0.7536, 180.0)
        with w.api("admin-token-for-tests") as api:
            wait_for(
                lambda: (
                    visit(api, monday, "vexin-01", "vesly")["detected_arrival"] is not None
                    and len(api.get("/api/v1/positions").json()["features"]) == 2
                    and api.get("/api/v1/alerts", params={"active": "true"}).json()
                ),
                timeout=30,
                what="the Monday detected, both buses placed and an alert raised",
            )
        yield w
    finally:
        w.stop_api()
        subscriber.stop()
        domain.stop()
        store.close()
        broker.stop()


def visit(api: httpx.Client, day: date, vehicle: str, stop: str) -> dict[str, Any]:
    body = api.get("/api/v1/visits", params={"date": day.isoformat()}).json()
    (found,) = [v for v in body["visits"] if v["vehicle"] == vehicle and v["stop"] == stop]
    return dict(found)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        raise AssertionError("Chromium is missing: run `make system-deps`")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


Page = Any


@pytest.fixture
def open_page(world: World, browser: Any) -> Iterator[Callable[..., Page]]:
    contexts: list[Any] = []

    def opener(token: str | None, hash_: str = "#/carte", width: int = 1280) -> Page:
        context = browser.new_context(
            locale="fr-FR",
            timezone_id=BROWSER_ZONE,
            viewport={"width": width, "height": 800},
            accept_downloads=True,
        )
        contexts.append(context)
        # Every breach of the page's Content-Security-Policy is kept for the tests to read.
        context.add_init_script(
            "window.cspViolations = [];"
            "document.addEventListener('securitypolicyviolation', e =>"
            " window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
        )
        # axe-core for the accessibility checks, given to the page the way the browser's
        # tools give scripts: the page's CSP forbids inline scripts and stays in force.
        context.add_init_script(path=str(AXE))
        # Offline, as on these machines: tiles (and anything not served by the API) fail.
        outside: list[str] = []

        def block(route: Any) -> None:
            outside.append(route.request.url)
            route.abort()

        context.route(re.compile(r"^https?://(?!127\.0\.0\.1)"), block)
        page = context.new_page()
        page.outside = outside
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.errors = []
        if token is not None:
            page.goto(f"{world.base_url}/#token={token}")
            page.wait_for_function("location.hash === '#/carte'")
            if hash_ != "#/carte":
                page.evaluate(f"location.hash = {hash_!r}")
        else:
            page.goto(f"{world.base_url}/{hash_}")
        return page

    yield opener
    for c in contexts:
        c.close()


def expect(page: Page) -> Any:
    return playwright_api.expect(page)


def screenshot(world: World, page: Page, name: str) -> None:
    page.screenshot(path=str(world.screenshots / f"{name}.png"), full_page=True)


# --- signing in ------------------------------------------------------------------------


def test_a_wrong_token_is_refused_and_an_unreachable_api_says_so(
    world: World, open_page: Callable[..., Page]
) -> None:
    page = open_page(None)
    expect(page.locator("#page-signin")).to_be_visible()
    page.click("details.token-signin summary")
    page.fill("#token-input", "not-a-token")
    page.click("#token-form button[type=submit]")
    expect(page.locator("#signin-message")).to_have_text(re.compile("^Jeton refusé"))
    assert page.evaluate("sessionStorage.getItem('medicobus.token')") is None
    # The API stops answering: a different message.
    page.context.route(re.compile(r".*/api/v1/.*"), lambda route: route.abort())
    page.fill("#token-input", "fm-eure-token")
    page.click("#token-form button[type=submit]")
    expect(page.locator("#signin-message")).to_have_text(re.compile("^API injoignable"))


def test_a_person_signs_in_with_a_password_changes_a_visit_and_signs_out(
    world: World, open_page: Callable[..., Page]
) -> None:
    day = world.dst_after
    with world.api("coord-eure-token") as api:
        visits = api.get("/api/v1/visits", params={"date": day.isoformat()}).json()["visits"]
    target = min(
        (v for v in visits if v["vehicle"] == "vexin-01"), key=lambda v: v["scheduled_arrival"]
    )
    page = open_page(None, f"#/passages/{day}")
    expect(page.locator("#page-signin")).to_be_visible()
    assert axe_violations(page) == []
    screenshot(world, page, "signin-1280")
    page.get_by_label("Adresse e-mail").fill(CLAIRE)
    page.get_by_label("Mot de passe").fill("not her password")
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#signin-message")).to_have_text(
        re.compile("^Adresse e-mail ou mot de passe incorrect")
    )
    page.get_by_label("Mot de passe").fill(CLAIRE_PASSWORD)
    page.click("#signin-form button[type=submit]")
    row = page.locator(f"tr[data-visit='{target['id']}']")
    expect(row).to_be_visible()
    # The session is an HttpOnly cookie: no script reads it, nothing is in storage.
    assert "medicobus_session" not in page.evaluate("document.cookie")
    assert page.evaluate("sessionStorage.length") == 0
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "medicobus_session"]
    assert (cookie["httpOnly"], cookie["secure"], cookie["sameSite"]) == (True, True, "Strict")
    # A change from the board carries the session's CSRF token and is hers in the log.
    row.locator("button[data-action='notice']").click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_label("Message public (facultatif)").fill("Arrivée vers 10 h")
    dialog.locator("button[type=submit]").click()
    expect(row.locator(".public-message")).to_contain_text("Arrivée vers 10 h")
    (entry, *_) = audit.entries(world.store, action="visit.notice", who="Claire Dubois")
    assert entry.target == target["id"]
    # A reload keeps her signed in (the cookie); signing out ends the session.
    page.reload()
    expect(page.locator(f"tr[data-visit='{target['id']}']")).to_be_visible()
    page.click("#sign-out")
    expect(page.locator("#page-signin")).to_be_visible()
    page.reload()
    expect(page.locator("#page-signin")).to_be_visible()
    # Signed in again, then disabled by an admin: the next request ends it in the page.
    page.get_by_label("Adresse e-mail").fill(CLAIRE)
    page.get_by_label("Mot de passe").fill(CLAIRE_PASSWORD)
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#page-passages")).to_be_visible()
    expect(page.locator("#link-state")).to_have_text("Direct : connecté")
    accounts.disable(world.store, Admin("admin"), CLAIRE, datetime.now(UTC))
    try:
        # Without any click: the live stream is closed, and its reconnection refused.
        expect(page.locator("#signin-message")).to_have_text(
            "Votre session a pris fin : reconnectez-vous.", timeout=20_000
        )
        expect(page.locator("#page-signin")).to_be_visible()
    finally:
        accounts.reset(world.store, Admin("admin"), CLAIRE, CLAIRE_PASSWORD, datetime.now(UTC))
    assert page.errors == []


def test_a_token_in_the_fragment_is_moved_to_session_storage(
    world: World, open_page: Callable[..., Page]
) -> None:
    page = open_page("fm-eure-token")
    assert "token" not in page.url
    assert page.evaluate("sessionStorage.getItem('medicobus.token')") == "fm-eure-token"
    expect(page.locator("#page-carte")).to_be_visible()
    # Reloading keeps the session (sessionStorage), with no token in any address.
    page.reload()
    expect(page.locator(".fleet-card")).to_have_count(1)
    assert all("token" not in url for url in page.outside)


# --- the map and the live feed -----------------------------------------------------------


def marker_position(page: Page, vehicle: str) -> str:
    return str(
        page.locator(f".leaflet-marker-icon[data-vehicle='{vehicle}']").get_attribute("style")
    )


def pane_offset(page: Page) -> tuple[float, float]:
    """Where the map's pane is: it moves when the view pans."""
    transform = page.evaluate("document.querySelector('.leaflet-map-pane').style.transform")
    x, y = re.findall(r"-?[\d.]+(?=px)", transform)[:2]
    return float(x), float(y)


def test_a_fleet_manager_sees_both_buses_move_without_reloading(
    world: World, open_page: Callable[..., Page]
) -> None:
    page = open_page("admin-token-for-tests")
    expect(page.locator("#link-state")).to_have_text("Direct : connecté")
    expect(page.locator(".leaflet-marker-icon.bus-icon")).to_have_count(2)
    # The stops (a zone and a centre each, and a name) are drawn though no tile loads.
    with world.api("admin-token-for-tests") as api:
        stops = api.get("/api/v1/stops").json()
    expect(page.locator(".stop-label")).to_have_count(len(stops))
    assert page.locator(".leaflet-overlay-pane path").count() >= 2 * len(stops)
    # Names that would overlap a bus or another name are hidden, the others shown.
    shown = page.evaluate(
        "[...document.querySelectorAll('.stop-label')].filter(l => l.style.visibility !== 'hidden')"
        ".map(l => l.getBoundingClientRect()).map(r => [r.left, r.top, r.right, r.bottom])"
    )
    assert shown
    for i, a in enumerate(shown):
        for b in shown[i + 1 :]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])
    expect(page.locator("#page-carte")).to_have_attribute("aria-busy", "false")
    page.evaluate("window.notReloaded = true")
    before = {v: marker_position(page, v) for v in ("vexin-01", "caux-01")}
    view = pane_offset(page)
    world.drive("vexin-01", 49.2500, 1.6500, 45.0)
    world.drive("caux-01", 49.6300, 0.7700, 270.0)
    for v in ("vexin-01", "caux-01"):
        page.wait_for_function(
            "([v, s]) => document.querySelector(`.leaflet-marker-icon[data-vehicle='${v}']`)"
            ".getAttribute('style') !== s",
            arg=[v, before[v]],
            timeout=15000,
        )
    assert page.evaluate("window.notReloaded") is True
    # The view did not jump to follow the buses.
    assert pane_offset(page) == pytest.approx(view, abs=1)
    # Heading: the arrow of vexin-01 points north-east.
    expect(page.locator(".leaflet-marker-icon[data-vehicle='vexin-01'] svg g")).to_have_attribute(
        "transform", "rotate(45 12 12)"
    )
    expect(page.locator(".leaflet-marker-icon[data-vehicle='vexin-01']")).to_have_class(
        re.compile("moving")
    )
    # caux-01's fridge alert shows as a badge on the map.
    expect(page.locator(".leaflet-marker-icon[data-vehicle='caux-01'] .badge")).to_be_visible()
    assert not page.errors
    outside = [u for u in page.outside if "data.geopf.fr/wmts" not in u]
    assert outside == [], "only the base map's tiles may come from outside"


def test_a_fleet_manager_of_one_operator_never_sees_the_others(
    world: World, open_page: Callable[..., Page]
) -> None:
    page = open_page("fm-caux-token")
    expect(page.locator(".fleet-card")).to_have_count(1)
    expect(page.locator(".fleet-card")).to_have_attribute("data-vehicle", "caux-01")
    expect(page.locator(".leaflet-marker-icon.bus-icon")).to_have_count(1)
    stops = page.evaluate("import('/static/app/state.js').then(m => m.fleet.stops.map(s => s.id))")
    with world.api("admin-token-for-tests") as api:
        every = {s["id"]: s for s in api.get("/api/v1/stops").json()}
        vexin_stops = {
            v["stop"]
            for day in (world.monday,)
            for v in api.get("/api/v1/visits", params={"date": day.isoformat()}).json()["visits"]
            if v["vehicle"] == "vexin-01"
        }
    assert stops and set(stops) <= set(every)
    assert not set(stops) & vexin_stops
    page.evaluate(f"location.hash = '#/passages/{world.monday}'")
    expect(page.locator("#board-content tbody tr").first).to_be_visible()
    assert "Vesly" not in page.locator("#board-content").inner_text()
    assert "Vexin" not in page.locator("body").inner_text()


# --- the coordinators' board -------------------------------------------------------------


def test_a_confirmation_on_one_board_appears_on_another(
    world: World, open_page: Callable[..., Page]
) -> None:
    with world.api("coord-eure-token") as api:
        vesly = visit(api, world.monday, "vexin-01", "vesly")
    row = f"tr[data-visit='{vesly['id']}']"
    other = open_page("coord-eure-2-token", f"#/passages/{world.monday}")
    expect(other.locator(row)).to_be_visible()
    expect(other.locator("#link-state")).to_have_text("Direct : connecté")
    page = open_page("coord-eure-token", f"#/passages/{world.monday}")
    expect(page.locator(f"{row} .arrival")).to_have_text("09:03")
    page.locator(f"{row} button[data-action='confirm']").click()
    expect(page.locator(f"{row} .confirmed")).to_contain_text("confirmé par coord-eure")
    # The other board was not reloaded: the live feed told it.
    expect(other.locator(f"{row} .confirmed")).to_contain_text(
        "confirmé par coord-eure", timeout=10000
    )
    with world.api("coord-eure-token") as api:
        assert visit(api, world.monday, "vexin-01", "vesly")["confirmed_by"] == "coord-eure"
    # Patients seen: a count, entered on the board and stored, with the consultations by
    # the operator's profiles; profiles that do not add up are refused with the reason.
    page.locator(f"{row} button[data-action='attendance']").click()
    dialog = page.locator("dialog[open]")
    expect(dialog).to_contain_text("jamais le nom d'un patient")
    dialog.get_by_label("Nombre de patients vus").fill("12")
    dialog.get_by_label("ALD sans médecin traitant").fill("3")
    dialog.get_by_label("Patients avec médecin traitant").fill("8")
    dialog.get_by_label("Type de journée").fill("dermatologie")
    dialog.get_by_label("Professionnels à bord").fill("med-01, ide-01")
    dialog.locator("button[type=submit]").click()
    expect(dialog.locator(".problems")).to_contain_text("add up to 11")
    dialog.get_by_label("Autres patients sans médecin traitant").fill("1")
    dialog.locator("button[type=submit]").click()
    expect(page.locator(f"{row} .patients")).to_have_text("12")
    with world.api("coord-eure-token") as api:
        vesly = visit(api, world.monday, "vexin-01", "vesly")
    assert vesly["patients_seen"] == 12
    assert vesly["consultations"]["by_profile"] == {
        "ald-sans-mt": 3,
        "70-ans-sans-mt": 0,
        "autre-sans-mt": 1,
        "avec-mt": 8,
    }
    assert vesly["consultations"]["offering"] == "dermatologie"
    assert vesly["consultations"]["professionals"] == ["med-01", "ide-01"]
    # The stops no visit explains are listed (the depot, morning and evening).
    expect(page.locator("#board-content")).to_contain_text("Arrêts hors programme")
    assert page.locator("#board-content table").nth(1).locator("tbody tr").count() >= 2
    # The history says who did what, and when (in Paris time).
    page.locator(f"{row} button[data-action='history']").click()
    dialog = page.locator("dialog[open]")
    expect(dialog).to_contain_text("coord-eure")
    expect(dialog).to_contain_text("Confirmation")
    expect(dialog).to_contain_text("Patients vus : 12")
    dialog.locator("button", has_text="Fermer").click()


def hhmm(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(PARIS).strftime("%H:%M")


def test_an_arrival_inside_a_gps_outage_shows_as_estimated_with_its_bounds(
    world: World, open_page: Callable[..., Page]
) -> None:
    with world.api("coord-eure-token") as api:
        hacqueville = visit(api, world.monday, "vexin-01", "hacqueville")
    assert hacqueville["arrival_estimated"] is True
    assert hacqueville["arrival_earliest"] < hacqueville["arrival_latest"]
    page = open_page("coord-eure-token", f"#/passages/{world.monday}")
    cell = page.locator(f"tr[data-visit='{hacqueville['id']}'] .arrival-cell")
    expect(cell.locator(".estimated")).to_have_text("vers")
    expect(cell).to_contain_text(
        f"(entre {hhmm(hacqueville['arrival_earliest'])} et {hhmm(hacqueville['arrival_latest'])})"
    )
    if hacqueville["status_certain"]:
        expect(cell.locator(".uncertain")).to_have_count(0)
    else:
        expect(cell.locator(".uncertain")).to_contain_text("classement incertain")
    # A visit detected without an outage is not marked.
    with world.api("coord-eure-token") as api:
        vesly = visit(api, world.monday, "vexin-01", "vesly")
    assert vesly["arrival_estimated"] is False
    expect(page.locator(f"tr[data-visit='{vesly['id']}'] .estimated")).to_have_count(0)


def test_etas_show_their_state_interval_and_source(
    world: World, open_page: Callable[..., Page]
) -> None:
    """Predictions as the tracker stores them, on caux-01's next day with two visits: one
    on its way and late, with an interval; one that can no longer be made, with no upper
    bound. (ETAs are shown for visits still to come.)"""
    punctuality = PunctualityStore(world.store)
    today = datetime.now(PARIS).date()
    day = next(
        d
        for d in (today + timedelta(days=n) for n in range(1, 8))
        if len(punctuality.planned_visits("caux-01", d)) >= 2
    )
    first, second = punctuality.planned_visits("caux-01", day)[:2]
    at = datetime.now(UTC).replace(microsecond=0)
    late = first.scheduled_arrival + timedelta(minutes=14)
    doubtful = second.scheduled_arrival + timedelta(hours=2)
    punctuality.save_etas(
        "caux-01",
        day,
        [
            Prediction(
                first,
                1,
                late,
                late - timedelta(minutes=6),
                late + timedelta(minutes=9),
                "late",
                "position",
                21_500.0,
            ),
            Prediction(second, 2, doubtful, doubtful, None, "doubtful", "timetable", 48_000.0),
        ],
        at,
    )
    page = open_page("fm-caux-token", f"#/passages/{day}")
    row = page.locator(f"tr[data-visit='{first.id}']")
    expect(row.locator(".eta strong")).to_have_text(hhmm(late.isoformat()))
    expect(row.locator(".eta-interval")).to_have_text(
        f"(entre {hhmm((late - timedelta(minutes=6)).isoformat())} et "
        f"{hhmm((late + timedelta(minutes=9)).isoformat())})"
    )
    expect(row.locator(".eta-state")).to_have_text("en retard")
    expect(row.locator(".eta-source")).to_have_text("d'après la position du bus")
    row = page.locator(f"tr[data-visit='{second.id}']")
    expect(row.locator(".eta-state")).to_have_text(
        "incertain : le bus ne peut plus arriver dans le créneau"
    )
    expect(row.locator(".eta-interval")).to_have_text(f"(pas avant {hhmm(doubtful.isoformat())})")
    expect(row.locator(".eta-source")).to_have_text("d'après l'horaire prévu")
    screenshot(world, page, "board-eta")
    for width in (390,):
        page.set_viewport_size({"width": width, "height": 800})
        expect(row.locator(".eta-state")).to_be_visible()
    punctuality.save_etas("caux-01", day, [], at)


def test_today_is_the_paris_day_not_the_browsers(
    world: World, open_page: Callable[..., Page]
) -> None:
    page = open_page("coord-eure-token", "#/passages")
    expect(page.locator("#board-date")).to_have_value(datetime.now(PARIS).date().isoformat())


@pytest.mark.parametrize("side", ["before", "after"])
def test_a_correction_typed_in_local_time_is_stored_in_utc_across_daylight_saving(
    world: World, open_page: Callable[..., Page], side: str
) -> None:
    day = world.dst_before if side == "before" else world.dst_after
    with world.api("coord-eure-token") as api:
        visits = api.get("/api/v1/visits", params={"date": day.isoformat()}).json()["visits"]
    (target,) = [v for v in visits if v["vehicle"] == "vexin-01" and v["stop"] != "gisors"][:1]
    page = open_page("coord-eure-token", f"#/passages/{day}")
    row = page.locator(f"tr[data-visit='{target['id']}']")
    row.locator("button[data-action='correct']").click()
    dialog = page.locator("dialog[open]")
    scheduled = datetime.fromisoformat(target["scheduled_arrival"]).astimezone(PARIS)
    typed = (scheduled + timedelta(minutes=7)).strftime("%H:%M")
    assert axe_violations(page) == []
    dialog.get_by_label("Heure d'arrivée").fill("9h07")
    dialog.get_by_label("Motif").fill("Saisie du registre")
    dialog.locator("button[type=submit]").click()
    expect(dialog.locator(".problems")).to_contain_text("Heure invalide")
    dialog.get_by_label("Heure d'arrivée").fill(typed)
    dialog.locator("button[type=submit]").click()
    expect(page.locator("dialog[open]")).to_have_count(0)
    expect(row.locator(".arrival")).to_have_text(typed)
    with world.api("coord-eure-token") as api:
        stored = visit(api, day, "vexin-01", target["stop"])
    expected_utc = (scheduled + timedelta(minutes=7)).astimezone(UTC)
    assert stored["arrival"] == expected_utc.isoformat().replace("+00:00", "Z")
    assert stored["arrival_source"] == "corrected"
    # The two days either side of the change have different offsets.
    sides = (world.dst_before, world.dst_after)
    offsets = {paris(d, 9, 0).astimezone(PARIS).utcoffset() for d in sides}
    assert offsets == {timedelta(hours=1), timedelta(hours=2)}


def test_a_visit_is_cancelled_with_a_reason(world: World, open_page: Callable[..., Page]) -> None:
    day = world.dst_before
    with world.api("coord-eure-token") as api:
        visits = api.get("/api/v1/visits", params={"date": day.isoformat()}).json()["visits"]
    target = max(
        (v for v in visits if v["vehicle"] == "vexin-01"), key=lambda v: v["scheduled_arrival"]
    )
    page = open_page("coord-eure-token", f"#/passages/{day}")
    row = page.locator(f"tr[data-visit='{target['id']}']")
    row.locator("button[data-action='cancel']").click()
    dialog = page.locator("dialog[open]")
    dialog.locator("button[type=submit]").click()
    expect(dialog.locator(".problems")).to_contain_text("Un motif est obligatoire")
    dialog.get_by_label("Motif").fill("Médecin absent")
    dialog.get_by_label("Message public (facultatif)").fill("Passage reporté à jeudi")
    dialog.locator("button[type=submit]").click()
    expect(row.locator(".status")).to_have_text("Annulé")
    expect(row).to_contain_text("Médecin absent")
    expect(row.locator(".public-message")).to_contain_text("« Passage reporté à jeudi »")
    with world.api("coord-eure-token") as api:
        stored = visit(api, day, "vexin-01", target["stop"])
    assert (stored["status"], stored["cancelled_reason"]) == ("cancelled", "Médecin absent")
    assert stored["public_message"] == "Passage reporté à jeudi"
    # The message is changed later from the board; the history keeps both.
    row.locator("button[data-action='notice']").click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_label("Message public (facultatif)").fill("Reporté au jeudi suivant, 9 h")
    dialog.locator("button[type=submit]").click()
    expect(row.locator(".public-message")).to_contain_text("Reporté au jeudi suivant, 9 h")
    row.locator("button[data-action='history']").click()
    dialog = page.locator("dialog[open]")
    expect(dialog).to_contain_text("« Passage reporté à jeudi »")
    expect(dialog).to_contain_text("« Reporté au jeudi suivant, 9 h »")


# --- alerts, fridge, reports ---------------------------------------------------------------


def test_an_alert_is_acknowledged_with_a_comment(
    world: World, open_page: Callable[..., Page]
) -> None:
    page = open_page("fm-caux-token", "#/alertes")
    row = page.locator("#alerts-content tbody tr").first
    expect(row).to_contain_text("Réfrigérateur")
    alert_id = row.get_attribute("data-alert")
    row.locator("button", has_text="Acquitter").click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_label("Commentaire").fill("Vaccins déplacés")
    dialog.locator("button[type=submit]").click()
    expect(page.locator(f"tr[data-alert='{alert_id}']")).to_contain_text("Acquittée par fm-caux")
    with world.api("fm-caux-token") as api:
        (found,) = [a for a in api.get("/api/v1/alerts").json() if str(a["id"]) == alert_id]
    assert found["acknowledged"]["by"] == "fm-caux"
    assert found["acknowledged"]["comment"] == "Vaccins déplacés"


def test_a_fridge_alarm_needs_a_comment_to_be_acknowledged(
    world: World, open_page: Callable[..., Page]
) -> None:
    page = open_page("fm-caux-token", "#/frigo/caux-01")
    expect(page.locator("#fridge-days li")).to_have_count(30)
    row = page.locator("#fridge-content tbody tr").first
    row.locator("button", has_text="Acquitter").click()
    dialog = page.locator("dialog[open]")
    dialog.locator("button[type=submit]").click()
    expect(dialog.locator(".problems")).to_contain_text("Le commentaire est obligatoire")
    dialog.get_by_label("Commentaire").fill("Pharmacien prévenu")
    dialog.locator("button[type=submit]").click()
    expect(row).to_contain_text("Acquittée par fm-caux")


def test_a_report_downloaded_as_csv_has_the_apis_figures(
    world: World, open_page: Callable[..., Page]
) -> None:
    page = open_page("coord-eure-token", "#/rapports/ponctualite")
    page.fill("#report-from", world.monday.isoformat())
    page.fill("#report-to", world.monday.isoformat())
    page.select_option("#report-group", "vehicle")
    page.click("#report-form button[type=submit]")
    expect(page.locator("#report-body tbody tr")).to_have_count(2)
    with page.expect_download() as download:
        page.click("#report-csv")
    path = download.value.path()
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text(encoding="utf-8"))))
    with world.api("coord-eure-token") as api:
        report = api.get(
            "/api/v1/reports/punctuality",
            params={"from": world.monday, "to": world.monday, "group_by": "vehicle"},
        ).json()
    assert [r["group"] for r in rows] == [g["group"] for g in [*report["groups"], report["total"]]]
    for r, g in zip(rows, [*report["groups"], report["total"]], strict=True):
        for key in ("visits", "held", "on_time", "late", "missed", "cancelled"):
            assert int(r[key]) == g[key]
    assert report["total"]["visits"] == 2
    # The page shows the same figures.
    expect(page.locator("#report-body tbody tr").last.locator(".n-visits")).to_have_text("2")


def test_a_report_asked_for_is_not_overwritten_by_the_pages_first_one_arriving_late(
    world: World, open_page: Callable[..., Page]
) -> None:
    page = open_page("coord-eure-token", "#/carte")
    held: list[Any] = []

    def hold_the_first(route: Any) -> None:
        if not held:
            held.append(route)  # answered later, after the report asked for
        else:
            route.continue_()

    page.route(re.compile(r"/api/v1/reports/punctuality\?"), hold_the_first)
    page.evaluate("location.hash = '#/rapports/ponctualite'")
    expect(page.locator("#report-from")).to_be_visible()
    page.fill("#report-from", world.monday.isoformat())
    page.fill("#report-to", world.monday.isoformat())
    page.select_option("#report-group", "vehicle")
    page.click("#report-form button[type=submit]")
    expect(page.locator("#report-body tbody tr")).to_have_count(2)
    assert held, "the page asked for no first report"
    with page.expect_response(lambda r: "group_by=day" in r.url):
        held[0].continue_()
    page.evaluate("new Promise((done) => setTimeout(done, 200))")
    expect(page.locator("#report-body tbody tr")).to_have_count(2)


# --- track and replay --------------------------------------------------------------------


def test_the_days_track_replays_with_its_stays(
    world: World, open_page: Callable[..., Page]
) -> None:
    page = open_page("fm-eure-token", f"#/trajet/vexin-01/{world.monday}")
    expect(page.locator("#track-slider")).to_be_enabled()
    expect(page.locator(".stays")).to_contain_text("Vesly : arrivée 09:03")
    first = page.locator("#track-clock").inner_text()
    assert re.fullmatch(r"\d\d:\d\d:\d\d — \d+ km/h", first), first
    page.locator("#track-play").click()
    expect(page.locator("#track-play")).to_have_text("Pause")
    page.wait_for_function(
        "c => document.querySelector('#track-clock').textContent !== c", arg=first
    )
    page.locator("#track-play").click()


# --- every page: French, accessible, on a phone too ---------------------------------------


ENGLISH_LEAK_MIN_LEN = 4


def english_phrases(page: Page) -> list[re.Pattern[str]]:
    pairs = page.evaluate(
        "import('/static/app/i18n.js').then(m => Object.keys(m.DICTIONARIES.en)"
        ".map(k => [m.DICTIONARIES.en[k], m.DICTIONARIES.fr[k]]))"
    )
    patterns = []
    for en, fr in pairs:
        if en == fr:
            continue
        for fragment in re.split(r"\{\w+\}", en):
            piece = fragment.strip(" :—,.()")
            if len(piece) >= ENGLISH_LEAK_MIN_LEN and piece not in fr:
                patterns.append(re.compile(rf"(?<!\w){re.escape(piece)}(?!\w)"))
    return patterns


def visible_text(page: Page) -> str:
    return str(
        page.evaluate(
            """() => {
              const clone = document.body.cloneNode(true);
              for (const el of clone.querySelectorAll('[lang=en], [hidden], script, style'))
                el.remove();
              return clone.innerText;
            }"""
        )
    )


def axe_violations(page: Page) -> list[dict[str, Any]]:
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map("
        "v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))})))"
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize(("width", "token"), [(1280, "coord-eure-token"), (390, "fm-caux-token")])
def test_every_page_is_in_french_and_accessible(
    world: World, open_page: Callable[..., Page], width: int, token: str
) -> None:
    """A coordinator on a desktop, and on a phone a fleet manager whose bus has alerts and
    fridge alarms (so their tables are checked too)."""
    page = open_page(token, width=width)
    english = english_phrases(page)
    assert len(english) > 100
    for name in PAGES:
        hash_ = {
            "passages": f"#/passages/{world.monday}",
            "trajet": f"#/trajet/vexin-01/{world.monday}",
        }.get(name, f"#/{name}")
        page.evaluate(f"location.hash = {hash_!r}")
        section = page.locator(f"#page-{name.split('/')[0]}")
        expect(section).to_have_attribute("aria-busy", "false")
        if name.startswith("rapports"):
            # Each report draws its chart and its table (none answers with an error).
            expect(section.locator(".error")).to_have_count(0)
            expect(section.locator("#report-chart canvas, .no-data")).to_have_count(1)
            expect(section.locator("#report-body table, #report-body dl.figures")).to_have_count(1)
        text = visible_text(page)
        leaks = sorted({p.pattern for p in english if p.search(text)})
        assert leaks == [], f"English on {name}: {leaks}"
        assert not re.search(r"\b(AM|PM)\b", text)
        assert page.evaluate("document.documentElement.lang") == "fr"
        violations = axe_violations(page)
        assert violations == [], f"{name}: {violations}"
        screenshot(world, page, f"{name.replace('/', '-')}-{width}")
        assert page.evaluate("window.cspViolations") == [], name
    assert not page.errors


def test_english_is_the_second_language(world: World, open_page: Callable[..., Page]) -> None:
    page = open_page("coord-eure-token")
    keys = page.evaluate(
        "import('/static/app/i18n.js').then(m => [m.DICTIONARIES.fr, m.DICTIONARIES.en]"
        ".map(d => Object.keys(d).sort()))"
    )
    assert keys[0] == keys[1], "every word has its French and its English"
    page.select_option("#lang-select", "en")
    expect(page.locator("#main-nav")).to_contain_text("Visits board")
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.evaluate("sessionStorage.getItem('medicobus.token')") == "coord-eure-token"
    page.select_option("#lang-select", "fr")
    expect(page.locator("#main-nav")).to_contain_text("Tableau de bord des passages")


# --- the live link ---------------------------------------------------------------------


def test_the_live_link_reconnects_with_the_last_event_id(
    world: World, open_page: Callable[..., Page]
) -> None:
    page = open_page("fm-eure-token")
    asked: list[dict[str, str]] = []
    page.on(
        "request", lambda r: asked.append(r.headers) if r.url.endswith("/api/v1/live") else None
    )
    link = page.locator("#link-state")
    expect(link).to_have_text("Direct : connecté")
    # The API restarts under the open page.
    world.stop_api()
    expect(link).to_have_text("Direct : reconnexion…")
    world.start_api()
    expect(link).to_have_text("Direct : connecté", timeout=20000)
    resumed = [h for h in asked if "last-event-id" in h]
    assert resumed, asked
    assert re.fullmatch(r"\d+", resumed[-1]["last-event-id"])
    assert all("token" not in h.get("last-event-id", "") for h in asked)
    assert all(h["authorization"] == "Bearer fm-eure-token" for h in asked)


# --- Paris time in the browser -----------------------------------------------------------


def test_local_times_become_instants_with_the_offset_of_their_day(
    world: World, open_page: Callable[..., Page]
) -> None:
    page = open_page("fm-eure-token")
    cases = {
        ("2026-03-28", "09:07"): "2026-03-28T09:07:00+01:00",
        ("2026-03-30", "09:07"): "2026-03-30T09:07:00+02:00",
        ("2026-10-24", "23:59"): "2026-10-24T23:59:00+02:00",
        ("2026-10-26", "00:00"): "2026-10-26T00:00:00+01:00",
        # The hour skipped in spring does not exist.
        ("2026-03-29", "02:30"): None,
        ("2026-03-29", "03:00"): "2026-03-29T03:00:00+02:00",
        ("2026-12-31", "23:59"): "2026-12-31T23:59:00+01:00",
        ("9999-12-31", "12:00"): "9999-12-31T12:00:00+01:00",
        ("2026-11-16", "24:00"): None,
        ("2026-11-16", "9:07"): None,
        ("2026-11-16", "09:60"): None,
        ("2026-11-16", ""): None,
        ("2026-11-16", "09:07\u0000"): None,
        ("2026-02-30", "09:00"): None,
    }
    got = page.evaluate(
        """cases => import('/static/app/time.js').then(m =>
             cases.map(([d, t]) => m.parisInstant(d, t)))""",
        [list(k) for k in cases],
    )
    assert dict(zip(cases, got, strict=True)) == cases
    # "Today" is the Paris day whatever the browser's zone (here UTC+14).
    assert page.evaluate("import('/static/app/time.js').then(m => m.parisDay())") == (
        datetime.now(PARIS).date().isoformat()
    )


# --- a bus that stops talking --------------------------------------------------------------


def test_a_bus_without_news_shows_stale_then_offline(
    world: World, open_page: Callable[..., Page]
) -> None:
    page = open_page("fm-caux-token")
    marker = page.locator(".leaflet-marker-icon[data-vehicle='caux-01']")
    expect(marker).to_have_attribute("title", re.compile("Dernier contact il y a"))
    # Ten minutes from now, without news, the bus would be shown as without contact.
    later = page.evaluate(
        "import('/static/app/state.js').then(m => m.vehicleState('caux-01', Date.now() + 6e5))"
    )
    assert later == "stale"
    # Its link goes down (the broker's last will): offline, live, on the map and its card.
    world.seq["status"] = world.seq.get("status", 0) + 1
    world.publish(
        StatusBatch(
            vehicle="caux-01",
            seq=world.seq["status"],
            samples=[StatusSample(t=datetime.now(UTC).replace(microsecond=0), online=False)],
        )
    )
    expect(marker).to_have_class(re.compile("offline"), timeout=15000)
    expect(page.locator(".fleet-card[data-vehicle='caux-01'] .state")).to_have_text("Hors ligne")


@pytest.mark.parametrize("width", [320, 1280])
def test_the_public_page_reads_on_an_old_phone_and_with_a_screen_reader(
    world: World, browser: Any, width: int
) -> None:
    # bypass_csp: the page forbids every script; axe is injected for the check only.
    context = browser.new_context(
        locale="fr-FR", viewport={"width": width, "height": 800}, bypass_csp=True
    )
    try:
        page = context.new_page()
        response = page.goto(f"{world.base_url}/public/doct-eure")
        assert response is not None and response.status == 200
        assert page.evaluate("document.documentElement.lang") == "fr"
        expect(page.locator("h1")).to_have_text("Doct'Eure (Hôpital de la Musse)")
        expect(page.locator("main h2").first).to_contain_text("Aujourd'hui")
        # Nothing wider than the screen: no sideways scrolling on a 320 px phone.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert page.evaluate("document.scripts.length") == 0
        assert axe_violations(page) == []
        screenshot(world, page, f"public-{width}")
    finally:
        context.close()


def test_the_public_page_shows_a_cancellation_as_soon_as_it_is_made(
    world: World, browser: Any
) -> None:
    """A coordinator cancels a visit of caux-01 this week (not on the day the ETA test
    uses); a patient who reloads the public page sees it cancelled, with the public
    message, not the reason."""
    today = datetime.now(PARIS).date()
    monday = today - timedelta(days=today.weekday())
    punctuality = PunctualityStore(world.store)
    eta_day = next(
        d
        for d in (today + timedelta(days=n) for n in range(1, 8))
        if len(punctuality.planned_visits("caux-01", d)) >= 2
    )
    day = next(
        d
        for d in (monday + timedelta(days=n) for n in range(7))
        if d not in (eta_day, today) and punctuality.planned_visits("caux-01", d)
    )
    context = browser.new_context(locale="fr-FR", viewport={"width": 390, "height": 800})
    try:
        public = context.new_page()
        public.goto(f"{world.base_url}/public/cpts-caux")
        expect(public.locator("h1")).to_have_text("CPTS du Pays de Caux")
        expect(public.locator("text=Bus en panne, reporté")).to_have_count(0)
        with world.api("admin-token-for-tests") as api:
            visits = api.get("/api/v1/visits", params={"date": day.isoformat()}).json()["visits"]
            target = next(v for v in visits if v["vehicle"] == "caux-01")
            done = api.post(
                f"/api/v1/visits/{target['id']}/cancel",
                json={
                    "reason": "mécanicien indisponible",
                    "public_message": "Bus en panne, reporté",
                },
            )
            assert done.status_code == 200, done.text
        public.reload()
        week = public.locator("main")
        expect(week).to_contain_text("Annulé")
        expect(week).to_contain_text("Bus en panne, reporté")
        expect(week).not_to_contain_text("mécanicien indisponible")
    finally:
        context.close()


def test_a_fleet_manager_sets_who_is_told_of_alerts_from_the_app(
    world: World, open_page: Callable[..., Page]
) -> None:
    record_notification_settings(
        world.store,
        NotificationSettings.model_validate(
            {
                "people": {"cellule": {"name": "Cellule", "email": "cellule@doct-eure.example"}},
                "routes": [
                    {"operator": "doct-eure", "steps": [["cellule"]], "channels": ["email"]}
                ],
                "smtp": {"host": "127.0.0.1", "sender": "alertes@medicobus.example"},
            }
        ),
        datetime.now(UTC),
    )
    page = open_page("fm-eure-token", "#/notifications")
    editor = page.locator("#notify-json")
    expect(editor).to_have_value(re.compile('"cellule"'))
    assert axe_violations(page) == []
    save = page.locator("#notify-form button[type=submit]")
    editor.fill("{pas du json")
    save.click()
    expect(page.locator("#notify-problems")).to_contain_text("JSON invalide")
    editor.fill(json.dumps({"routes": [{"operator": "doct-eure", "steps": [["personne"]]}]}))
    save.click()
    expect(page.locator("#notify-problems .error")).to_be_visible()
    on_call = {
        "people": {"garde-eure": {"name": "Garde", "email": "garde@doct-eure.example"}},
        "routes": [
            {
                "operator": "doct-eure",
                "kinds": ["offline"],
                "steps": [["garde-eure"]],
                "channels": ["email"],
            }
        ],
    }
    editor.fill(json.dumps(on_call))
    save.click()
    expect(page.locator("#notify-status")).to_have_text(
        "Enregistré : appliqué dès la prochaine alerte."
    )
    page.reload()
    expect(page.locator("#notify-json")).to_have_value(re.compile('"garde-eure"'))
    with world.api("fm-eure-token") as api:
        shown = api.get("/api/v1/alerts/routing").json()
    assert shown["set_from_the_api"]["doct-eure"]["by"] == "fm-eure"
    assert [r["steps"] for r in shown["routes"]] == [[["garde-eure"]]]
    screenshot(world, page, "notifications")
    assert not page.errors


def test_the_documentation_renders_under_its_content_security_policy(
    world: World, open_page: Callable[..., Page]
) -> None:
    page = open_page(None, "docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Médicobus telemetry")
    expect(page.locator(".opblock").first).to_be_visible()
    assert page.evaluate("window.cspViolations") == []
    assert not page.errors
