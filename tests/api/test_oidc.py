"""Signing in through an OpenID Connect provider (SQLite, PostgreSQL), against a provider
served on loopback by the test (tests/support/oidc_provider.py, no outside network): the
browser's round trip gives a session with the role and operator the provider's claims
name; every answer that proves nothing (wrong state, audience, nonce, issuer, signature,
expiry, an unknown role, a missing operator, a denial, a disabled account) signs nobody
in, sends the browser back to the sign-in page and is in the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from joserfc.jwk import RSAKey

from api.app import create_app
from api.auth import SESSION_COOKIE, Role
from api.oidc import FLOW_COOKIE, OidcProvider, OidcSettings
from ingest.services import accounts, audit
from ingest.store import Store
from tests.support.actors import Admin
from tests.support.live import TEST_USERS, serving
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
CAMILLE = {
    "email": "camille.martin@caux.fr",
    "name": "Camille Martin",
    "email_verified": True,
    "medicobus_role": "coordinatrice",
    "medicobus_operator": "cpts-caux",
}


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    found = Provider()
    with serving(found.app()) as url:
        found.issuer = url
        yield found


@pytest.fixture
def browser(store: Store, provider: Provider) -> Iterator[TestClient]:
    provider.claims = dict(CAMILLE)
    provider.forge = {}
    provider.signing_key = None
    provider.deny = False
    settings = OidcSettings.model_validate(
        {
            "issuer": provider.issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "label": "Pro Santé Connect",
            "roles": {"coordinatrice": "coordinator"},
        }
    )
    app = create_app(
        store,
        TEST_USERS,
        oidc=OidcProvider(settings),
        session_lifetime=timedelta(hours=8),
    )
    with TestClient(app, base_url="https://testserver") as client:
        yield client


def round_trip(browser: TestClient, tamper: dict[str, str] | None = None) -> str:
    """The browser's way: to the provider and back; returns where it lands at the end."""
    start = browser.get("/api/v1/session/oidc", follow_redirects=False)
    assert start.status_code == 303, start.text
    assert FLOW_COOKIE in start.headers["set-cookie"]
    assert "samesite=lax" in start.headers["set-cookie"].lower()
    at_provider = httpx.get(start.headers["location"], follow_redirects=False)
    assert at_provider.status_code == 302, at_provider.text
    back = urlsplit(at_provider.headers["location"])
    assert back.path == "/api/v1/session/oidc/callback"
    query = back.query
    for name, value in (tamper or {}).items():
        query = "&".join(
            f"{name}={value}" if part.startswith(f"{name}=") else part for part in query.split("&")
        )
    landed = browser.get(f"{back.path}?{query}", follow_redirects=False)
    assert landed.status_code == 303, landed.text
    return str(landed.headers["location"])


def test_the_providers_claims_give_the_role_and_operator(browser: TestClient, store: Store) -> None:
    offered = browser.get("/api/v1/session/providers").json()
    assert offered == {"oidc": {"label": "Pro Santé Connect", "url": "/api/v1/session/oidc"}}
    assert round_trip(browser) == "/#/carte"
    me = browser.get("/api/v1/session").json()
    assert (me["name"], me["email"], me["role"], me["operator"]) == (
        "Camille Martin",
        "camille.martin@caux.fr",
        "coordinator",
        "cpts-caux",
    )
    assert me["csrf_token"]
    assert [v["id"] for v in browser.get("/api/v1/vehicles").json()] == ["caux-01"]
    # The account was made at the first sign-in, without any password that works.
    (made,) = accounts.listed(store)
    assert made.email == "camille.martin@caux.fr"
    assert (
        accounts.sign_in(
            store,
            email=made.email,
            password=accounts.NO_PASSWORD,
            address="x",
            now=NOW,
            lifetime=timedelta(hours=1),
        )
        is None
    )
    logged = [(e.action, e.detail.get("provider")) for e in audit.entries(store)]
    assert ("signin", "Pro Santé Connect") in logged
    # The provider's claims are authoritative at each sign-in: a new role takes effect.
    browser.cookies.clear()
    browser.app.state.oidc.settings.roles["coordinatrice"] = Role.FLEET_MANAGER  # type: ignore[attr-defined]
    assert round_trip(browser) == "/#/carte"
    assert browser.get("/api/v1/session").json()["role"] == "fleet_manager"


def refused(browser: TestClient, store: Store, reason: str, **tamper: str) -> None:
    assert round_trip(browser, tamper or None) == "/#/connexion-refusee"
    assert SESSION_COOKIE not in browser.cookies
    assert browser.get("/api/v1/vehicles").status_code == 401
    (entry, *_) = audit.entries(store, action="signin.refused")
    assert reason in entry.detail["reason"], entry.detail


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        ({"aud": "another-client"}, "aud"),
        ({"nonce": "not-the-one-sent"}, "nonce"),
        ({"iss": "https://evil.example"}, "iss"),
        ({"exp": 1_000_000_000}, "exp"),
    ],
)
def test_a_forged_id_token_signs_nobody_in(
    browser: TestClient, store: Store, provider: Provider, forge: dict[str, Any], reason: str
) -> None:
    provider.forge = forge
    refused(browser, store, reason)


def test_a_token_signed_by_another_key_signs_nobody_in(
    browser: TestClient, store: Store, provider: Provider
) -> None:
    provider.signing_key = RSAKey.generate_key(2048, {"kid": "k1"})
    refused(browser, store, "ID token is refused")


def test_a_return_of_another_browser_or_a_made_up_code_signs_nobody_in(
    browser: TestClient, store: Store, provider: Provider
) -> None:
    refused(browser, store, "state", state="made-up")
    refused(browser, store, "refused the code", code="made-up")
    # No sign-in under way in this browser at all.
    fresh = browser.get("/api/v1/session/oidc/callback?code=x&state=y", follow_redirects=False)
    assert fresh.headers["location"] == "/#/connexion-refusee"
    (entry, *_) = audit.entries(store, action="signin.refused")
    assert "no sign-in under way" in entry.detail["reason"]


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"medicobus_role": "chef"}, "not a role"),
        ({"medicobus_operator": None}, "needs"),
        ({"email": None}, "no e-mail"),
        ({"email": "not an e-mail"}, "not an e-mail"),
        ({"email_verified": False}, "not verified"),
        ({"name": "Camille\x00Martin", "medicobus_role": "chef\x00"}, "not a role"),
    ],
)
def test_claims_that_do_not_name_a_person_of_the_product_sign_nobody_in(
    browser: TestClient,
    store: Store,
    provider: Provider,
    claims: dict[str, Any],
    reason: str,
) -> None:
    provider.claims = {k: v for k, v in (CAMILLE | claims).items() if v is not None}
    refused(browser, store, reason)
    assert accounts.listed(store) == []


def test_a_denial_and_a_disabled_account_sign_nobody_in(
    browser: TestClient, store: Store, provider: Provider
) -> None:
    provider.deny = True
    refused(browser, store, "access_denied")
    provider.deny = False
    assert round_trip(browser) == "/#/carte"
    accounts.disable(store, Admin(), CAMILLE["email"], NOW)
    assert browser.get("/api/v1/vehicles").status_code == 401
    browser.cookies.clear()
    assert round_trip(browser) == "/#/connexion-refusee"
    (entry, *_) = audit.entries(store, action="signin.refused")
    assert entry.detail["reason"] == "disabled"


def test_without_a_provider_there_is_no_such_way_in(store: Store) -> None:
    with TestClient(create_app(store, TEST_USERS), base_url="https://testserver") as client:
        assert client.get("/api/v1/session/providers").json() == {"oidc": None}
        assert client.get("/api/v1/session/oidc", follow_redirects=False).status_code == 404
