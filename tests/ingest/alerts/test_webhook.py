"""Alert notifications pushed to a real HTTP receiver: retried with back-off, in order,
given up after a bound, and never in the way of the ingest."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest

from ingest.alerts import storage
from ingest.alerts.evaluator import AlertEvaluator
from ingest.alerts.rules import HealthThresholds
from ingest.alerts.webhook import WebhookNotifier, backoff
from ingest.store import Store
from protocol import StatusBatch, StatusSample
from protocol.clock import ManualClock
from tests.support.domain import WebhookReceiver, webhook_receiver
from tests.support.live import running_api
from tests.support.wait import wait_for

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
THRESHOLDS = HealthThresholds(
    offline_after=timedelta(minutes=5),
    no_fix_after=timedelta(minutes=10),
    low_soc_pct=20,
    low_soc_clear_pct=25,
)


def status(store: Store, evaluator: AlertEvaluator, seq: int, online: bool, t: datetime) -> None:
    batch = StatusBatch(vehicle="vexin-01", seq=seq, samples=[StatusSample(t=t, online=online)])
    store.save_batch(batch, t)


@contextmanager
def notifier(store: Store, receiver: WebhookReceiver, **kw: float) -> Iterator[WebhookNotifier]:
    n = WebhookNotifier(
        store,
        receiver.url,
        timeout_s=kw.get("timeout_s", 5.0),
        max_attempts=int(kw.get("max_attempts", 5)),
        backoff_s=0.05,
        max_backoff_s=0.2,
        poll_s=0.05,
    )
    n.start()
    try:
        yield n
    finally:
        n.stop()


def test_back_off_doubles_up_to_its_cap() -> None:
    assert [backoff(n, 2.0, 10.0).total_seconds() for n in (1, 2, 3, 4, 5)] == [2, 4, 8, 10, 10]


def test_a_failing_receiver_gets_the_alert_on_a_later_attempt_and_in_order(
    store: Store,
) -> None:
    clock = ManualClock(NOW)
    evaluator = AlertEvaluator(store, THRESHOLDS, clock, notify=True)
    status(store, evaluator, 0, False, NOW)
    evaluator.evaluate(["vexin-01"])
    status(store, evaluator, 1, True, NOW + timedelta(seconds=30))
    evaluator.evaluate(["vexin-01"])
    with webhook_receiver([500, 503]) as receiver, notifier(store, receiver) as n:
        wait_for(lambda: len(receiver.received) == 2, what="raise and clear delivered")
        # The receiver has the POST before the worker records its answer.
        wait_for(lambda: n.counters["delivered"] == 2, what="both recorded as delivered")
        # The clear waited for its raise, which needed three attempts.
        assert receiver.events() == [("raised", 1), ("cleared", 1)]
        assert receiver.attempts == 4
        assert n.counters == {"failed_attempts": 2, "delivered": 2}
        raised = receiver.received[0]["alert"]
        assert (raised["vehicle"], raised["kind"], raised["severity"]) == (
            "vexin-01",
            "offline",
            "warning",
        )
        assert raised["since"] == NOW.isoformat()
        assert raised["detail"]["reason"] == "status"
        assert receiver.headers[0]["Content-Type"] == "application/json"
        assert receiver.headers[0]["X-Medicobus-Notification"].isdigit()
    assert storage.notification_counts(store.engine) == {"delivered": 2}


def test_a_receiver_that_never_answers_well_is_given_up_on_and_counted(store: Store) -> None:
    clock = ManualClock(NOW)
    evaluator = AlertEvaluator(store, THRESHOLDS, clock, notify=True)
    status(store, evaluator, 0, False, NOW)
    evaluator.evaluate(["vexin-01"])
    with webhook_receiver([500] * 10) as receiver, notifier(store, receiver, max_attempts=3) as n:
        wait_for(lambda: n.counters["abandoned"] == 1, what="notification abandoned")
        assert receiver.attempts == 3
        assert receiver.received == []
    assert storage.notification_counts(store.engine) == {"abandoned": 1}
    with running_api(store, token="eng-eure-token") as api:
        seen = api.get("/api/v1/alerts/deliveries").json()
    latest = seen.pop("abandoned_latest")
    assert seen == {
        "delivered": 0,
        "pending": 0,
        "abandoned": 1,
        "failed_attempts": 3,
        "last_error": "HTTP 500 Internal Server Error",
        "by_channel": {"webhook": {"delivered": 0, "pending": 0, "abandoned": 1}},
    }
    assert [(a["channel"], a["event"], a["attempts"], a["reason"]) for a in latest] == [
        ("webhook", "raised", 3, "HTTP 500 Internal Server Error")
    ]


def test_a_slow_receiver_never_holds_up_the_evaluation(store: Store) -> None:
    clock = ManualClock(NOW)
    hold = threading.Event()
    with webhook_receiver() as receiver:
        receiver.hold = hold
        n = WebhookNotifier(store, receiver.url, timeout_s=10.0, poll_s=0.05)
        evaluator = AlertEvaluator(store, THRESHOLDS, clock, notify=True, on_change=n.wake)
        n.start()
        try:
            status(store, evaluator, 0, False, NOW)
            evaluator.evaluate(["vexin-01"])
            wait_for(
                lambda: (
                    receiver.attempts == 0
                    and storage.notification_counts(store.engine) == {"pending": 1}
                ),
                what="notification pending",
            )
            # While the receiver sits on the first POST, alerts keep being evaluated.
            status(store, evaluator, 1, True, NOW + timedelta(seconds=5))
            assert evaluator.evaluate(["vexin-01"]) == [("cleared", 1)]
            assert receiver.received == []
            hold.set()
            wait_for(lambda: len(receiver.received) == 2, what="both delivered")
        finally:
            n.stop()


def test_a_webhook_url_must_be_http(store: Store) -> None:
    with pytest.raises(ValueError, match="http"):
        WebhookNotifier(store, "ftp://example.org/hook")
