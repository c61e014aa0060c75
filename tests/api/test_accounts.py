"""Accounts that sign in with a password (SQLite, PostgreSQL): Argon2id hashes, a session
cookie that is HttpOnly, Secure and SameSite=Strict, CSRF on every change made with it,
sign-out, expiry, disabling that ends sessions at once, throttling per account and per
address, the audit of it all, and the ``medicobus users`` commands."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import CSRF_HEADER, SESSION_COOKIE
from ingest.itinerary import Itinerary
from ingest.services import accounts, audit
from ingest.services.common import ConflictError, RefusedError
from ingest.store import Store
from ingest.tables.access import accounts as accounts_table
from protocol.clock import ManualClock
from tests.support.actors import Admin
from tests.support.live import TEST_USERS

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery staple"
MEDICOBUS = str(Path(sys.executable).parent / "medicobus")


def add(store: Store, email: str = "camille@caux.fr", role: str = "coordinator") -> None:
    accounts.add(
        store,
        Admin(),
        email=email,
        name="Camille Martin",
        role=role,
        operator=None if role == "admin" else "cpts-caux",
        password=PASSWORD,
        now=NOW,
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def browser(store: Store, clock: ManualClock) -> Iterator[TestClient]:
    """A browser on the API over HTTPS (the session cookie is Secure)."""
    app = create_app(store, TEST_USERS, clock=clock, session_lifetime=timedelta(hours=8))
    with TestClient(app, base_url="https://testserver") as client:
        yield client


def sign_in(client: TestClient, email: str = "camille@caux.fr", password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/session", json={"email": email, "password": password})


def test_the_password_is_kept_as_an_argon2id_hash(store: Store) -> None:
    add(store)
    with store.engine.connect() as conn:
        (kept,) = conn.execute(sa.select(accounts_table.c.password_hash)).scalars()
    assert kept.startswith("$argon2id$")
    assert PASSWORD not in kept


def test_signing_in_gives_a_session_cookie_and_a_csrf_token(
    browser: TestClient, store: Store
) -> None:
    add(store)
    answer = sign_in(browser)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["name"], body["role"], body["operator"]) == (
        "Camille Martin",
        "coordinator",
        "cpts-caux",
    )
    assert body["expires_at"].startswith("2026-12-04T17:00")
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    for flag in ("HttpOnly", "Secure", "SameSite=strict", "Path=/", "Max-Age=28800"):
        assert flag.lower() in cookie.lower(), cookie
    # The cookie alone reads, with the person's scope.
    vehicles = browser.get("/api/v1/vehicles")
    assert vehicles.status_code == 200, vehicles.text
    assert [v["id"] for v in vehicles.json()] == ["caux-01"]
    me = browser.get("/api/v1/session").json()
    assert (me["email"], me["csrf_token"]) == ("camille@caux.fr", body["csrf_token"])
    # The e-mail is compared without case or surrounding spaces.
    browser.cookies.clear()
    assert sign_in(browser, email="  Camille@CAUX.fr ").status_code == 200


def test_a_change_with_the_cookie_needs_the_csrf_token_and_this_site_as_origin(
    browser: TestClient, store: Store
) -> None:
    add(store)
    csrf = sign_in(browser).json()["csrf_token"]
    # An unknown alert: 404 once past the session checks; 403 when they refuse.
    without = browser.post("/api/v1/alerts/999/ack", json={})
    assert without.status_code == 403
    assert CSRF_HEADER in without.json()["detail"]
    wrong = browser.post("/api/v1/alerts/999/ack", json={}, headers={CSRF_HEADER: "0" * 64})
    assert wrong.status_code == 403
    elsewhere = browser.post(
        "/api/v1/alerts/999/ack",
        json={},
        headers={CSRF_HEADER: csrf, "Origin": "https://evil.example"},
    )
    assert elsewhere.status_code == 403
    assert "evil.example" in elsewhere.json()["detail"]
    right = browser.post(
        "/api/v1/alerts/999/ack",
        json={},
        headers={CSRF_HEADER: csrf, "Origin": "https://testserver"},
    )
    assert right.status_code == 404, right.text
    # A token in the Authorization header needs no CSRF token (a browser never adds it).
    scripted = browser.post(
        "/api/v1/alerts/999/ack",
        json={},
        headers={"Authorization": "Bearer admin-token-for-tests"},
    )
    assert scripted.status_code == 404


def test_signing_out_ends_the_session_on_the_server(browser: TestClient, store: Store) -> None:
    add(store)
    csrf = sign_in(browser).json()["csrf_token"]
    value = browser.cookies[SESSION_COOKIE]
    assert browser.delete("/api/v1/session").status_code == 403  # no CSRF token
    out = browser.delete("/api/v1/session", headers={CSRF_HEADER: csrf})
    assert out.status_code == 204
    assert (
        'medicobus_session=""' in out.headers["set-cookie"]
        or "Max-Age=0" in out.headers["set-cookie"]
    )
    # The same cookie, kept by someone, is refused: the session ended on the server.
    browser.cookies.clear()
    browser.cookies.set(SESSION_COOKIE, value)
    stale = browser.get("/api/v1/vehicles")
    assert stale.status_code == 401
    assert "sign in again" in stale.json()["detail"]


def test_a_session_expires(browser: TestClient, store: Store, clock: ManualClock) -> None:
    add(store)
    assert sign_in(browser).status_code == 200
    clock.advance(8 * 3600 - 1)
    assert browser.get("/api/v1/vehicles").status_code == 200
    clock.advance(2)
    assert browser.get("/api/v1/vehicles").status_code == 401


def test_disabling_an_account_ends_its_sessions_at_once(browser: TestClient, store: Store) -> None:
    add(store)
    assert sign_in(browser).status_code == 200
    assert browser.get("/api/v1/vehicles").status_code == 200
    accounts.disable(store, Admin(), "camille@caux.fr", NOW)
    assert browser.get("/api/v1/vehicles").status_code == 401
    browser.cookies.clear()
    refused = sign_in(browser)
    assert refused.status_code == 401
    # A new password enables it again, and the old one no longer works.
    accounts.reset(store, Admin(), "camille@caux.fr", "another long passphrase", NOW)
    assert sign_in(browser).status_code == 401
    assert sign_in(browser, password="another long passphrase").status_code == 200


def test_wrong_passwords_are_throttled_per_account_from_any_address(
    browser: TestClient, store: Store
) -> None:
    add(store)
    add(store, email="dominique@caux.fr")
    for _ in range(5):
        assert sign_in(browser, password="not the password").status_code == 401
    throttled = sign_in(browser)  # even the right password, for now
    assert throttled.status_code == 429
    assert "this account" in throttled.json()["detail"]
    assert int(throttled.headers["Retry-After"]) > 0
    # Another account is not held back by it.
    assert sign_in(browser, email="dominique@caux.fr").status_code == 200


def test_wrong_passwords_are_throttled_per_address(browser: TestClient, store: Store) -> None:
    add(store)
    for n in range(20):
        assert sign_in(browser, email=f"nobody{n}@caux.fr").status_code == 401
    throttled = sign_in(browser)
    assert throttled.status_code == 429
    assert "this address" in throttled.json()["detail"]


def test_unknown_accounts_and_bad_input_get_a_clear_answer(
    browser: TestClient, store: Store
) -> None:
    add(store)
    assert sign_in(browser, email="nobody@caux.fr").status_code == 401
    for body in (
        {"email": "camille@caux.fr"},
        {"email": "camille@caux.fr", "password": ""},
        {"email": "x" * 255, "password": PASSWORD},
        {"email": "camille@caux.fr", "password": "p" * 1025},
        {"email": "camille@caux.fr", "password": PASSWORD, "role": "admin"},
        {"email": 10**30, "password": PASSWORD},
    ):
        answer = browser.post("/api/v1/session", json=body)
        assert answer.status_code == 422, (body, answer.text)
    for email, password in (
        ("camille\x00@caux.fr", PASSWORD),
        ("camille@caux.fr\x00", PASSWORD),
        ("camille@caux.fr", PASSWORD + "\x00"),
        ("🦄@caux.fr", "🦄" * 300),
    ):
        answer = sign_in(browser, email=email, password=password)
        assert answer.status_code == 401, answer.text
    # None of it signed anyone in; each is in the audit log, control characters shown.
    assert SESSION_COOKIE not in browser.cookies
    refused = [e.who for e in audit.entries(store, action="signin.refused")]
    assert "camille\ufffd@caux.fr" in refused
    assert browser.get("/api/v1/vehicles").status_code == 401


def test_sign_ins_are_in_the_audit_log(browser: TestClient, store: Store) -> None:
    add(store)
    assert sign_in(browser, password="wrong password!!").status_code == 401
    csrf = sign_in(browser).json()["csrf_token"]
    browser.delete("/api/v1/session", headers={CSRF_HEADER: csrf})
    accounts.disable(store, Admin(), "camille@caux.fr", NOW)
    logged = [(e.action, e.who, e.target) for e in reversed(audit.entries(store))]
    assert logged == [
        ("account.add", "test", "camille@caux.fr"),
        ("signin.refused", "camille@caux.fr", "camille@caux.fr"),
        ("signin", "Camille Martin", "camille@caux.fr"),
        ("signout", "Camille Martin", "camille@caux.fr"),
        ("account.disable", "test", "camille@caux.fr"),
    ]
    texts = " ".join(str(e.detail) for e in audit.entries(store))
    assert PASSWORD not in texts and "wrong password" not in texts


def test_accounts_refuse_what_they_cannot_hold(store: Store) -> None:
    add(store)
    with pytest.raises(ConflictError):
        add(store, email="CAMILLE@caux.fr")
    for change in (
        {"email": "not an e-mail"},
        {"email": "a\x00b@caux.fr"},
        {"name": ""},
        {"name": "x" * 101},
        {"name": "Camille\x1b[31m"},
        {"role": "root"},
        {"role": "coordinator", "operator": None},
        {"password": "short"},
        {"password": "p" * 1025},
        {"password": "long enough but\x00"},
    ):
        fields: dict[str, object] = {
            "email": "other@caux.fr",
            "name": "Other",
            "role": "coordinator",
            "operator": "cpts-caux",
            "password": PASSWORD,
        } | change
        with pytest.raises(RefusedError):
            accounts.add(store, Admin(), now=NOW, **fields)  # type: ignore[arg-type]
    assert [a.email for a in accounts.listed(store)] == ["camille@caux.fr"]


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MEDICOBUS, *args], capture_output=True, text=True, timeout=60, check=False, input=stdin
    )


def test_users_from_the_command_line(tmp_path: Path, itinerary: Itinerary) -> None:
    url = f"sqlite:///{tmp_path}/api.sqlite"
    Store.open(url).close()
    config = tmp_path / "api.toml"
    config.write_text(f'database_url = "{url}"\n')
    made = run(
        "users", "add", "-c", str(config), "camille@caux.fr", "--name", "Camille Martin",
        "--role", "coordinator", "--operator", "cpts-caux",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    password = made.stdout.strip().rsplit(" ", 1)[-1]
    store = Store.open(url)
    try:
        app = create_app(store, [], clock=ManualClock(NOW))
        with TestClient(app, base_url="https://testserver") as client:
            assert sign_in(client, password=password).status_code == 200
            assert client.get("/api/v1/session").json()["role"] == "coordinator"
            # Another password, read from standard input, ends the session.
            reset = run("users", "reset", "-c", str(config), "camille@caux.fr",
                        "--password-stdin", stdin="a new long passphrase\n")  # fmt: skip
            assert reset.returncode == 0, reset.stderr
            assert password not in reset.stdout
            assert client.get("/api/v1/session").status_code == 401
            assert sign_in(client, password="a new long passphrase").status_code == 200
            listed = run("users", "list", "-c", str(config))
            assert "camille@caux.fr\tCamille Martin\tcoordinator\tcpts-caux" in listed.stdout
            assert "enabled" in listed.stdout
            disabled = run("users", "disable", "-c", str(config), "camille@caux.fr")
            assert disabled.returncode == 0, disabled.stderr
            assert client.get("/api/v1/session").status_code == 401
            assert "disabled" in run("users", "list", "-c", str(config)).stdout
    finally:
        store.close()
    # Refusals name the reason and change nothing.
    for args, reason in (
        (("camille@caux.fr", "--name", "Again", "--role", "admin"), "has an account already"),
        (("x@caux.fr", "--name", "X", "--role", "coordinator"), "needs an operator"),
        (("x@caux.fr", "--name", "X", "--role", "root"), "unknown role"),
        (("not-an-email", "--name", "X", "--role", "admin"), "is not an e-mail"),
    ):
        refused = run("users", "add", "-c", str(config), *args)
        assert refused.returncode == 2
        assert reason in refused.stderr, refused.stderr
    short = run("users", "reset", "-c", str(config), "camille@caux.fr", "--password-stdin",
                stdin="short\n")  # fmt: skip
    assert short.returncode == 2 and "at least 12" in short.stderr
    unknown = run("users", "disable", "-c", str(config), "nobody@caux.fr")
    assert unknown.returncode == 2 and "no account" in unknown.stderr
    assert run("users", "list", "-c", str(config)).stdout.count("\n") == 1
