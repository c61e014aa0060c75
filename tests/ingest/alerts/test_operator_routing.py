"""Routing set per operator from the API: checked against the ingest's settings, used by
the dispatcher from the next alert on, never for alerts already routed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.auth import ApiUser, Role, hash_token
from ingest.alerts import storage
from ingest.alerts.dispatch import AlertDispatcher
from ingest.reports.configuration import record_notification_settings
from ingest.store import Store
from protocol.clock import ManualClock
from tests.ingest.alerts.test_notifications import (
    COORDINATOR,
    NOW,
    PARIS,
    PHARMACIST,
    go_offline,
    settings,
    worker,
)
from tests.support.live import TEST_USERS, serving
from tests.support.smtp import SmtpServer

GARDE = "garde@doct-eure.example"
USERS = [
    *TEST_USERS,
    ApiUser(
        name="fm-eure",
        role=Role.FLEET_MANAGER,
        operator="doct-eure",
        token_sha256=hash_token("fm-eure-token"),
    ),
]
ON_CALL = {
    "people": {"garde-eure": {"name": "Médecin de garde", "email": GARDE}},
    "roles": {"garde": ["garde-eure"]},
    "routes": [
        {"operator": "doct-eure", "kinds": ["offline"], "steps": [["garde"]], "channels": ["email"]}
    ],
}


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    server = SmtpServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def api(store: Store) -> Iterator[str]:
    with serving(create_app(store, USERS)) as url:
        yield url


def put(api: str, token: str, operator: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.put(
        f"{api}/api/v1/alerts/routing/{operator}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )


def test_a_routing_set_from_the_api_reaches_its_recipients(
    store: Store,
    smtp: SmtpServer,
    api: str,
) -> None:
    s = settings(smtp, steps=[["pharmacienne"]])
    record_notification_settings(store, s, NOW)
    r = put(api, "fm-eure-token", "doct-eure", ON_CALL)
    assert r.status_code == 200, r.text
    shown = r.json()
    assert [route["steps"] for route in shown["routes"]] == [[["garde"]]]
    assert shown["people"]["garde-eure"]["email"] == GARDE
    assert shown["set_from_the_api"]["doct-eure"]["by"] == "fm-eure"
    clock = ManualClock(NOW)
    go_offline(store, clock)
    assert AlertDispatcher(store, s, PARIS, clock).dispatch() == 1
    assert worker(store, s).send_due() == 1
    assert [m.recipients for m in smtp.mails()] == [[GARDE]]


def test_an_alert_already_routed_keeps_its_route_after_an_edit(
    store: Store,
    smtp: SmtpServer,
    api: str,
) -> None:
    s = settings(smtp, steps=[["pharmacienne"], ["coordination"]], escalate_after_min=15)
    record_notification_settings(store, s, NOW)
    clock = ManualClock(NOW)
    go_offline(store, clock)
    dispatcher = AlertDispatcher(store, s, PARIS, clock)
    assert dispatcher.dispatch() == 1  # the pharmacist, by the settings' route
    assert put(api, "fm-eure-token", "doct-eure", ON_CALL).status_code == 200
    clock.advance(16 * 60)
    assert dispatcher.dispatch() == 1  # escalated along the route it started on
    assert worker(store, s).send_due() == 2
    assert sorted(r for m in smtp.mails() for r in m.recipients) == [COORDINATOR, PHARMACIST]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({**ON_CALL, "routes": [{"operator": "doct-eure", "steps": [["nobody"]]}]}, "unknown"),
        ({**ON_CALL, "people": {"pharmacienne": {"name": "X", "email": "x@y.fr"}}}, "already"),
        (
            {**ON_CALL, "routes": [{"operator": "cpts-caux", "steps": [["garde"]]}]},
            "names operator",
        ),
        (
            {
                **ON_CALL,
                "routes": [{"operator": "doct-eure", "steps": [["garde"]], "channels": ["sms"]}],
            },
            "SMS",
        ),
        ({**ON_CALL, "people": {"g": {"name": "G", "email": "pas une adresse"}}}, "e-mail"),
        ({**ON_CALL, "people": {"g": {"name": "G", "phone": "0612345678"}}}, "E.164"),
        (
            {
                **ON_CALL,
                "routes": [{"operator": "doct-eure", "kinds": ["boom"], "steps": [["garde"]]}],
            },
            "kinds",
        ),
        (
            {
                **ON_CALL,
                "routes": [
                    {"operator": "doct-eure", "steps": [["garde"]], "escalate_after_min": 10**30}
                ],
            },
            "escalate",
        ),
        ({**ON_CALL, "people": {"g\x00": {"name": "G", "email": "g@x.fr"}}}, "names"),
    ],
)
def test_a_routing_that_does_not_hold_is_refused_and_nothing_is_stored(
    store: Store,
    smtp: SmtpServer,
    api: str,
    body: dict[str, Any],
    words: str,
) -> None:
    record_notification_settings(store, settings(smtp), NOW)
    r = put(api, "fm-eure-token", "doct-eure", body)
    assert r.status_code == 422, r.text
    assert words in str(r.json()["detail"]), r.json()
    with store.engine.connect() as conn:
        assert storage.operator_routings(conn) == {}


def test_only_admins_and_the_operators_fleet_managers_may_set_it(
    store: Store,
    smtp: SmtpServer,
    api: str,
) -> None:
    record_notification_settings(store, settings(smtp), NOW)
    assert put(api, "fm-caux-token", "doct-eure", ON_CALL).status_code == 404
    assert put(api, "coord-eure-token", "doct-eure", ON_CALL).status_code == 403
    assert put(api, "fm-eure-token", "nowhere", ON_CALL).status_code == 404
    assert put(api, "admin-token-for-tests", "doct-eure", ON_CALL).status_code == 200
    theirs = httpx.get(
        f"{api}/api/v1/alerts/routing", headers={"Authorization": "Bearer fm-caux-token"}
    ).json()
    assert theirs["routes"] == [] and theirs["set_from_the_api"] == {}
    assert "garde-eure" not in theirs["people"]
