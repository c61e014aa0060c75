"""Alerts reaching people: e-mail through a real SMTP server (aiosmtpd, STARTTLS or
implicit TLS, login), SMS through an HTTP server standing in for the SMS provider (the
provider itself cannot run here: this local server is its fake), routed per operator,
reminded and escalated on the project's clock, delivered once across an outage and a
restart of the sender."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from ingest.alerts import storage
from ingest.alerts.channels import EmailChannel, SmsChannel
from ingest.alerts.dispatch import AlertDispatcher
from ingest.alerts.evaluator import AlertEvaluator
from ingest.alerts.notify_settings import NotificationSettings
from ingest.alerts.rules import HealthThresholds
from ingest.alerts.webhook import DeliveryWorker
from ingest.domain import IngestDomain
from ingest.itinerary import Itinerary
from ingest.reports.configuration import record_notification_settings
from ingest.settings import DomainSettings
from ingest.store import Store
from protocol import GpsBatch, GpsSample, StatusBatch, StatusSample
from protocol.clock import ManualClock
from tests.support.domain import webhook_receiver
from tests.support.live import running_api
from tests.support.smtp import PASSWORD, USER, SmtpServer
from tests.support.wait import wait_for

PARIS = ZoneInfo("Europe/Paris")
# A Monday at 11:00 in Paris: working hours.
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
THRESHOLDS = HealthThresholds(
    offline_after=timedelta(minutes=5),
    no_fix_after=timedelta(minutes=10),
    low_soc_pct=20,
    low_soc_clear_pct=25,
)
PHARMACIST = "pharmacie@doct-eure.example"
COORDINATOR = "coordination@doct-eure.example"
PHONE = "+33612345678"


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    server = SmtpServer(tmp_path).start()
    yield server
    server.stop()


def settings(
    smtp: SmtpServer,
    sms_url: str | None = None,
    *,
    steps: list[list[str]] | None = None,
    max_attempts: int = 5,
    **route: Any,
) -> NotificationSettings:
    return NotificationSettings.model_validate(
        {
            "public_base_url": "https://medicobus.example/",
            "people": {
                "pharmacienne": {"name": "Claire M.", "email": PHARMACIST, "phone": PHONE},
                "coordination": {"name": "Cellule", "email": COORDINATOR},
            },
            "roles": {"astreinte": ["pharmacienne", "coordination"]},
            "routes": [
                {
                    "operator": "doct-eure",
                    "kinds": ["offline"],
                    "steps": steps or [["astreinte"]],
                    "channels": ["email", "sms"] if sms_url else ["email"],
                    **route,
                }
            ],
            "smtp": {
                "host": "127.0.0.1",
                "port": smtp.port,
                "security": "tls" if smtp.implicit_tls else "starttls",
                "username": USER,
                "password": PASSWORD,
                "sender": "alertes@medicobus.example",
                "ca_file": str(smtp.cert),
                "timeout_s": 3,
            },
            "sms": None
            if sms_url is None
            else {
                "url": sms_url,
                "headers": {"X-Api-Key": "cle-$key", "Content-Type": "application/json"},
                "body": '{"event": "alert.sms", "alert": {"to": $to_json, "text": $text_json}}',
            },
            "delivery": {"max_attempts": max_attempts, "backoff_s": 0.05, "max_backoff_s": 0.2},
        }
    )


def worker(store: Store, s: NotificationSettings) -> DeliveryWorker:
    assert s.smtp is not None
    channels: list[Any] = [EmailChannel(s.smtp, s.delivery)]
    if s.sms is not None:
        channels.append(SmsChannel(s.sms, s.delivery))
    return DeliveryWorker(store, channels, poll_s=0.05)


def go_offline(store: Store, clock: ManualClock, vehicle: str = "vexin-01") -> int:
    """The bus at Gisors, then its agent's last will: an offline alert."""
    t = clock.now()
    fix = GpsSample(t=t - timedelta(minutes=1), lat=49.2809, lon=1.7768, fix_mode=3)
    store.save_batch(GpsBatch(vehicle=vehicle, seq=0, samples=[fix]), t)
    batch = StatusBatch(vehicle=vehicle, seq=1, samples=[StatusSample(t=t, online=False)])
    store.save_batch(batch, t)
    evaluator = AlertEvaluator(store, THRESHOLDS, clock)
    changes = evaluator.evaluate([vehicle])
    assert [e for e, _ in changes] == ["raised"]
    return changes[0][1]


def test_the_alert_reaches_the_on_call_role_by_email_and_sms_once(
    store: Store, smtp: SmtpServer
) -> None:
    clock = ManualClock(NOW)
    alert = go_offline(store, clock)
    with webhook_receiver() as gateway:
        s = settings(smtp, gateway.url)
        dispatcher = AlertDispatcher(store, s, PARIS, clock)
        assert dispatcher.dispatch() == 3  # two e-mails, one SMS
        # Evaluated again and again: nothing more is queued.
        assert dispatcher.dispatch() == 0
        assert AlertDispatcher(store, s, PARIS, clock).dispatch() == 0
        sender = worker(store, s)
        assert sender.send_due() == 3
        assert sender.send_due() == 0

        mails = smtp.mails()
        assert sorted(r for m in mails for r in m.recipients) == [COORDINATOR, PHARMACIST]
        mail = mails[0]
        assert mail.sender == "alertes@medicobus.example"
        assert mail.message["Subject"] == (
            "Médicobus Doct'Eure Vexin-Normand (vexin-01) : bus hors ligne"
        )
        text = mail.text
        assert "Bus : Doct'Eure Vexin-Normand (vexin-01)." in text
        assert "Lieu : Gisors (49.28090, 1.77680)." in text
        # The value: since when, by the Paris clock (UTC+1 in November).
        assert "Valeur : plus de nouvelles depuis le 23/11/2026 à 11:00." in text
        assert f"Acquitter : https://medicobus.example/#/alertes?alert={alert}" in text
        assert mail.message["Message-ID"].startswith(f"<alert-{alert}-step-0-first-email-")

        # The SMS provider's stand-in received the request built from the templates.
        assert len(gateway.received) == 1
        sms = gateway.received[0]["alert"]
        assert sms["to"] == PHONE
        assert "Alerte Médicobus" in sms["text"]
        assert "bus hors ligne" in sms["text"]
        assert gateway.headers[0]["X-Api-Key"].startswith(f"cle-alert-{alert}-step-0-first-sms-")

    counts = storage.notification_counts_by_channel(store.engine)
    assert counts == {
        "email": {"delivered": 2, "pending": 0, "abandoned": 0},
        "sms": {"delivered": 1, "pending": 0, "abandoned": 0},
    }


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls_with_login_delivers(store: Store, tmp_path: Path) -> None:
    server = SmtpServer(tmp_path, implicit_tls=True).start()
    try:
        clock = ManualClock(NOW)
        go_offline(store, clock)
        s = settings(server, steps=[["coordination"]])
        assert AlertDispatcher(store, s, PARIS, clock).dispatch() == 1
        assert worker(store, s).send_due() == 1
        assert [m.recipients for m in server.mails()] == [[COORDINATOR]]
    finally:
        server.stop()


def test_mail_sent_while_the_server_is_down_arrives_once_it_is_back_once(
    store: Store, smtp: SmtpServer
) -> None:
    clock = ManualClock(NOW)
    go_offline(store, clock)
    s = settings(smtp, steps=[["pharmacienne"]], max_attempts=50)
    smtp.stop()
    assert AlertDispatcher(store, s, PARIS, clock).dispatch() == 1
    first = worker(store, s)
    assert first.send_due() == 0
    pending = storage.open_notifications(store.engine)
    assert len(pending) == 1 and pending[0].attempts == 1
    assert "Connection" in (storage.last_failure(store.engine) or "")

    # The sender restarts (a new worker on the same queue) and the server comes back.
    smtp.start()
    second = worker(store, s)
    second.start()
    try:
        wait_for(lambda: len(smtp.mails()) == 1, what="the mail after the outage")
        wait_for(lambda: second.counters["delivered"] == 1, what="recorded as delivered")
        time.sleep(0.3)  # several more polls of the worker
    finally:
        second.stop()
    assert first.send_due() == 0
    assert [m.recipients for m in smtp.mails()] == [[PHARMACIST]]
    assert storage.notification_counts(store.engine) == {"delivered": 1}


def test_a_message_claimed_by_a_sender_that_died_is_sent_after_its_lease(
    store: Store, smtp: SmtpServer
) -> None:
    clock = ManualClock(NOW)
    go_offline(store, clock)
    s = settings(smtp, steps=[["pharmacienne"]])
    AlertDispatcher(store, s, PARIS, clock).dispatch()
    [n] = storage.open_notifications(store.engine)
    # Claimed by a process that stopped before sending: nobody else sends it meanwhile.
    assert storage.lease(store.engine, n, datetime.now(UTC) + timedelta(seconds=1))
    assert worker(store, s).send_due() == 0
    assert smtp.mails() == []
    time.sleep(1.1)
    assert worker(store, s).send_due() == 1
    assert len(smtp.mails()) == 1


def test_given_up_after_the_configured_attempts_with_the_reason_shown(
    store: Store, smtp: SmtpServer
) -> None:
    clock = ManualClock(NOW)
    go_offline(store, clock)
    s = settings(smtp, steps=[["pharmacienne"]], max_attempts=2)
    smtp.stop()
    AlertDispatcher(store, s, PARIS, clock).dispatch()
    sender = worker(store, s)
    sender.send_due()
    wait_for(lambda: sender.send_due() == 0 and sender.counters["abandoned"] == 1, what="given up")
    with running_api(store, token="eng-eure-token") as api:
        body = api.get("/api/v1/alerts/deliveries").json()
    assert body["by_channel"]["email"] == {"delivered": 0, "pending": 0, "abandoned": 1}
    [gone] = body["abandoned_latest"]
    assert (gone["channel"], gone["recipient"], gone["attempts"]) == ("email", PHARMACIST, 2)
    assert "ConnectionRefusedError" in gone["reason"]


def test_reminder_then_escalation_when_nobody_acknowledges(store: Store, smtp: SmtpServer) -> None:
    clock = ManualClock(NOW)
    alert = go_offline(store, clock)
    s = settings(
        smtp,
        steps=[["pharmacienne"], ["coordination"]],
        remind_after_min=5,
        escalate_after_min=15,
    )
    dispatcher = AlertDispatcher(store, s, PARIS, clock)
    sender = worker(store, s)

    def step(minutes: float) -> list[tuple[list[str], str]]:
        clock.set(NOW + timedelta(minutes=minutes))
        before = len(smtp.mails())
        dispatcher.dispatch()
        sender.send_due()
        return [(m.recipients, m.message["Subject"]) for m in smtp.mails()[before:]]

    assert step(0) == [
        ([PHARMACIST], "Médicobus Doct'Eure Vexin-Normand (vexin-01) : bus hors ligne")
    ]
    assert step(4) == []
    assert step(6) == [
        ([PHARMACIST], "RAPPEL – Médicobus Doct'Eure Vexin-Normand (vexin-01) : bus hors ligne")
    ]
    assert step(10) == []
    assert step(16) == [
        ([COORDINATOR], "ESCALADE – Médicobus Doct'Eure Vexin-Normand (vexin-01) : bus hors ligne")
    ]
    assert "personne ne l'a acquittée à temps" in smtp.mails()[-1].text
    # The last step: it gets its reminder, and nothing comes after.
    assert [r for r, _ in step(22)] == [[COORDINATOR]]
    assert step(120) == []
    assert alert > 0


def test_an_acknowledged_alert_is_not_escalated(store: Store, smtp: SmtpServer) -> None:
    clock = ManualClock(NOW)
    alert = go_offline(store, clock)
    s = settings(smtp, steps=[["pharmacienne"], ["coordination"]], escalate_after_min=15)
    dispatcher = AlertDispatcher(store, s, PARIS, clock)
    assert dispatcher.dispatch() == 1
    with store.engine.begin() as conn:
        storage.acknowledge_alert(conn, alert, "claire", NOW + timedelta(minutes=3), None)
    clock.set(NOW + timedelta(minutes=30))
    assert dispatcher.dispatch() == 0


def test_alerts_of_another_operator_or_kind_follow_no_route(store: Store, smtp: SmtpServer) -> None:
    clock = ManualClock(NOW)
    go_offline(store, clock, vehicle="caux-01")
    s = settings(smtp)
    assert AlertDispatcher(store, s, PARIS, clock).dispatch() == 0


def test_alerts_older_than_the_routing_horizon_are_not_sent_after_a_restart(
    store: Store, smtp: SmtpServer
) -> None:
    clock = ManualClock(NOW)
    go_offline(store, clock)
    clock.set(NOW + timedelta(hours=3))
    assert AlertDispatcher(store, settings(smtp), PARIS, clock).dispatch() == 0


def test_the_routing_is_readable_from_the_api_without_secrets(
    store: Store, smtp: SmtpServer
) -> None:
    with webhook_receiver() as gateway:
        s = settings(smtp, gateway.url)
    record_notification_settings(store, s, NOW)
    with running_api(store, token="eng-eure-token") as api:
        body = api.get("/api/v1/alerts/routing").json()
    with running_api(store, token="fm-caux-token") as api:
        other = api.get("/api/v1/alerts/routing").json()
    assert body["routes"][0]["steps"] == [["astreinte"]]
    assert body["people"]["pharmacienne"]["phone"] == PHONE
    assert "password" not in body["smtp"]
    assert PASSWORD not in str(body)
    assert body["sms"]["headers"] == {"X-Api-Key": "…", "Content-Type": "…"}
    # Another operator sees neither the route nor the people on it.
    assert other["routes"] == [] and other["people"] == {}


@pytest.mark.parametrize(
    "change",
    [
        {"people": {"x": {"name": "X", "phone": "0612345678"}}},
        {"people": {"x": {"name": "X", "email": "a\x00b@c.fr"}}},
        {"people": {"x": {"name": "X", "email": "a@c.fr, b@d.fr"}}},
        {"people": {"x": {"name": "X", "email": "a@c.fr\r\nBcc: b@d.fr"}}},
        {"people": {"x": {"name": "X", "email": "Claire <a@c.fr>"}}},
        {"people": {"x": {"name": "X", "email": "a@" + "c" * 300 + ".fr"}}},
        {"people": {"x": {"name": "X"}}},
        {"roles": {"r": ["nobody"]}},
        {"routes": [{"operator": "doct-eure", "steps": [["nobody"]]}]},
        {"routes": [{"operator": "doct-eure", "steps": [[]]}]},
        {"routes": [{"operator": "doct-eure", "steps": [], "channels": ["email"]}]},
        {
            "routes": [
                {"operator": "doct-eure", "steps": [["x"]], "escalate_after_min": float("inf")}
            ]
        },
        {"night_start": 24},
    ],
)
def test_bad_routing_settings_are_refused(change: dict[str, Any]) -> None:
    base: dict[str, Any] = {
        "people": {"x": {"name": "X", "email": "x@example.fr"}},
        "smtp": {"host": "127.0.0.1", "sender": "a@b.fr"},
    }
    with pytest.raises(ValidationError):
        NotificationSettings.model_validate({**base, **change})


def test_sms_needs_a_gateway() -> None:
    with pytest.raises(ValidationError, match=r"notifications\.sms"):
        NotificationSettings.model_validate(
            {
                "people": {"x": {"name": "X", "phone": PHONE}},
                "routes": [{"operator": "o", "steps": [["x"]], "channels": ["sms"]}],
            }
        )


def test_the_ingest_domain_routes_and_sends_with_its_settings(
    store: Store, smtp: SmtpServer, itinerary: Itinerary
) -> None:
    clock = ManualClock(NOW)
    domain = IngestDomain(
        store,
        itinerary,
        DomainSettings(notifications=settings(smtp, steps=[["pharmacienne"]])),
        clock,
    )
    batch = StatusBatch(vehicle="vexin-01", seq=0, samples=[StatusSample(t=NOW, online=False)])
    store.save_batch(batch, NOW)
    domain.catch_up()
    assert [m.recipients for m in smtp.mails()] == [[PHARMACIST]]
    assert "Lieu : position inconnue." in smtp.mails()[0].text
    domain.catch_up()
    assert len(smtp.mails()) == 1


@pytest.mark.parametrize(
    "gateway",
    [
        {"url": "http://127.0.0.1/sms", "body": '{"to": $phone}'},
        {"url": "http://127.0.0.1/sms", "body": "cost: 5$"},
        {"url": "http://127.0.0.1/sms?to=$to", "body": "{}"},
        {"url": "http://127.0.0.1/sms", "headers": {"X-Key": "${secret}"}},
        {"url": "ftp://127.0.0.1/sms"},
        {"url": "http://127.0.0.1/s\x00ms"},
    ],
)
def test_sms_templates_that_cannot_be_filled_are_refused(gateway: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="sms"):
        NotificationSettings.model_validate({"sms": gateway})


def test_a_cleared_alert_is_neither_reminded_nor_escalated(store: Store, smtp: SmtpServer) -> None:
    clock = ManualClock(NOW)
    go_offline(store, clock)
    s = settings(
        smtp, steps=[["pharmacienne"], ["coordination"]], remind_after_min=5, escalate_after_min=15
    )
    dispatcher = AlertDispatcher(store, s, PARIS, clock)
    assert dispatcher.dispatch() == 1
    back = NOW + timedelta(minutes=2)
    batch = StatusBatch(vehicle="vexin-01", seq=2, samples=[StatusSample(t=back, online=True)])
    store.save_batch(batch, back)
    evaluator = AlertEvaluator(store, THRESHOLDS, clock)
    assert [e for e, _ in evaluator.evaluate(["vexin-01"])] == ["cleared"]
    clock.set(NOW + timedelta(hours=1))
    assert dispatcher.dispatch() == 0


def test_another_operators_abandoned_messages_are_counted_but_not_shown(
    store: Store, smtp: SmtpServer
) -> None:
    clock = ManualClock(NOW)
    go_offline(store, clock, vehicle="caux-01")
    s = settings(smtp, steps=[["coordination"]], max_attempts=1, operator="cpts-caux")
    smtp.stop()
    assert AlertDispatcher(store, s, PARIS, clock).dispatch() == 1
    worker(store, s).send_due()
    with running_api(store, token="eng-eure-token") as api:
        theirs = api.get("/api/v1/alerts/deliveries").json()
    with running_api(store) as api:
        admin = api.get("/api/v1/alerts/deliveries").json()
    assert theirs["abandoned"] == admin["abandoned"] == 1
    assert theirs["abandoned_latest"] == []
    assert [a["recipient"] for a in admin["abandoned_latest"]] == [COORDINATOR]
