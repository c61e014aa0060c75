"""Signing in to the web app through the organisation's identity provider, in Chromium:
the sign-in page offers the provider, the browser goes there and back, and the map opens
with the operator's bus; a refusal brings the sign-in page back with a sentence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api as playwright_api

from api.app import create_app
from api.oidc import OidcProvider, OidcSettings
from ingest.itinerary import Itinerary
from ingest.store import Store
from tests.support.live import TEST_USERS, serving
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider
from tests.webapp.test_webapp import AXE, CHROMIUM, CHROMIUM_ARGS, axe_violations


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, itinerary: Itinerary) -> Iterator[Any]:
    provider = Provider()
    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('oidc') / 'api.sqlite'}")
    store.load_fleet(itinerary)
    with serving(provider.app()) as issuer:
        provider.issuer = issuer
        settings = OidcSettings.model_validate(
            {
                "issuer": issuer,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "label": "Pro Santé Connect",
            }
        )
        app = create_app(store, TEST_USERS, oidc=OidcProvider(settings))
        with serving(app) as base:
            yield provider, base, tmp_path_factory.mktemp("screens")
    store.close()


@pytest.fixture(scope="module")
def page_of() -> Iterator[Any]:
    if not CHROMIUM.exists():
        raise AssertionError("Chromium is missing: run `make system-deps`")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)

        def page() -> Any:
            context = browser.new_context(locale="fr-FR")
            # axe-core as the browser's tools give scripts: the page's CSP stays in force.
            context.add_init_script(path=str(AXE))
            return context.new_page()

        yield page
        browser.close()


def test_signing_in_through_the_provider_opens_the_map(site: Any, page_of: Any) -> None:
    provider, base, screens = site
    provider.claims = {
        "email": "dominique@eure.fr",
        "name": "Dominique Leroy",
        "medicobus_role": "fleet_manager",
        "medicobus_operator": "doct-eure",
    }
    page = page_of()
    page.goto(base)
    button = page.get_by_role("link", name="Se connecter avec Pro Santé Connect")
    playwright_api.expect(button).to_be_visible()
    assert axe_violations(page) == []
    page.screenshot(path=str(Path(screens) / "signin-oidc.png"))
    button.click()
    playwright_api.expect(page.locator(".fleet-card")).to_have_count(1)
    playwright_api.expect(page.locator("#card-vexin-01")).to_be_visible()
    assert page.url.endswith("/#/carte")
    # Refused by the provider: back on the sign-in page, saying so.
    page.click("#sign-out")
    provider.deny = True
    try:
        page.get_by_role("link", name="Se connecter avec Pro Santé Connect").click()
        playwright_api.expect(page.locator("#signin-message")).to_contain_text(
            "La connexion par votre organisation n'a pas abouti"
        )
    finally:
        provider.deny = False
    assert "connexion-refusee" not in page.url
