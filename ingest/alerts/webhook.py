"""Delivers alert notifications from the queue in the system of record: a webhook (POST
JSON), e-mail and SMS (:mod:`ingest.alerts.channels`), each retried with back-off.

Runs in its own thread from the notifications table, so a slow or dead receiver never
holds up the ingest, and what was not delivered before a restart is sent after it. A
notification is claimed (leased) in the database before it is sent, so two processes
never send it at once; one whose sender stopped mid-way is sent again when the lease
runs out (at least once). Notifications of one alert to one recipient go out in order (a
clear never overtakes its raise). The standard library's HTTP client is enough for one
JSON POST with a timeout.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import Final, Protocol

from ingest.alerts import storage
from ingest.store import Store
from protocol.clock import Clock, SystemClock

log = logging.getLogger(__name__)

USER_AGENT: Final = "medicobus-alerts/1"


def backoff(attempts: int, first_s: float, max_s: float) -> timedelta:
    """The wait after ``attempts`` failed attempts: first_s, then doubling, capped."""
    return timedelta(seconds=min(max_s, first_s * 2 ** max(0, attempts - 1)))


class Channel(Protocol):
    """One way out of the queue; ``send`` returns None when delivered, else why not."""

    name: str
    timeout_s: float
    max_attempts: int
    backoff_s: float
    max_backoff_s: float

    def send(self, n: storage.Notification) -> str | None: ...


class WebhookChannel:
    name = "webhook"

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        max_attempts: int = 8,
        backoff_s: float = 2.0,
        max_backoff_s: float = 300.0,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL must be http(s)://, got {url!r}")
        self.url = url
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s

    def send(self, n: storage.Notification) -> str | None:
        """POST the notification; None on a 2xx answer, else why not."""
        request = urllib.request.Request(
            self.url,
            data=n.payload.encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                # Lets the receiver drop a notification it already has (a retry whose
                # first answer was lost).
                "X-Medicobus-Notification": str(n.id),
            },
        )
        return http_outcome(request, self.timeout_s)


def http_outcome(request: urllib.request.Request, timeout_s: float) -> str | None:
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if 200 <= status < 300 else f"HTTP {status}"


class DeliveryWorker:
    def __init__(
        self,
        store: Store,
        channels: Sequence[Channel],
        *,
        poll_s: float = 1.0,
        clock: Clock | None = None,
    ) -> None:
        self._store = store
        self._channels = {c.name: c for c in channels}
        self._poll_s = poll_s
        # Back-off is about the receiver recovering: wall time, whatever the ingest's clock.
        self._clock = clock or SystemClock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.counters: Counter[str] = Counter()

    @property
    def channels(self) -> list[str]:
        return sorted(self._channels)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="alert-delivery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            longest = max((c.timeout_s for c in self._channels.values()), default=0.0)
            self._thread.join(timeout=longest + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.send_due()
            except Exception:
                log.exception("delivery: pass failed")
            self._wake.wait(self._poll_s)
            self._wake.clear()

    def send_due(self) -> int:
        """Attempt every notification that is due; returns how many were delivered."""
        sent = 0
        blocked: set[tuple[str, str, int]] = set()
        engine = self._store.engine
        for n in storage.open_notifications(engine, channels=self._channels):
            if self._stop.is_set():
                break
            line = (n.channel, n.recipient, n.alert_id)
            if line in blocked:
                continue
            channel = self._channels[n.channel]
            now = self._clock.now()
            if n.next_attempt_at is not None and n.next_attempt_at > now:
                blocked.add(line)
                continue
            lease_until = now + timedelta(seconds=channel.timeout_s * 2 + 5)
            if not storage.lease(engine, n, lease_until):
                blocked.add(line)
                continue
            attempts = n.attempts + 1
            try:
                error = channel.send(n)
            except Exception as exc:
                # A malformed template or payload: recorded like any failure.
                error = f"{type(exc).__name__}: {exc}"
            done = self._clock.now()
            if error is None:
                storage.delivered(engine, n.id, done, attempts)
                self._count("delivered")
                sent += 1
                continue
            blocked.add(line)
            self._count("failed_attempts")
            retry_at = None
            if attempts >= channel.max_attempts:
                self._count("abandoned")
                log.error(
                    "%s: gave up on notification %d (alert %d %s) after %d attempts: %s",
                    n.channel,
                    n.id,
                    n.alert_id,
                    n.event,
                    attempts,
                    error,
                )
            else:
                retry_at = done + backoff(attempts, channel.backoff_s, channel.max_backoff_s)
                log.warning(
                    "%s: notification %d (alert %d %s) failed (attempt %d): %s; retry at %s",
                    n.channel,
                    n.id,
                    n.alert_id,
                    n.event,
                    attempts,
                    error,
                    retry_at.isoformat(),
                )
            storage.failed(
                engine, n.id, attempts=attempts, error=error, retry_at=retry_at, when=done
            )
        return sent

    def _count(self, what: str) -> None:
        with self._lock:
            self.counters[what] += 1


class WebhookNotifier(DeliveryWorker):
    """The delivery worker with the webhook alone."""

    def __init__(
        self,
        store: Store,
        url: str,
        *,
        timeout_s: float = 5.0,
        max_attempts: int = 8,
        backoff_s: float = 2.0,
        max_backoff_s: float = 300.0,
        poll_s: float = 1.0,
        clock: Clock | None = None,
    ) -> None:
        channel = WebhookChannel(
            url,
            timeout_s=timeout_s,
            max_attempts=max_attempts,
            backoff_s=backoff_s,
            max_backoff_s=max_backoff_s,
        )
        super().__init__(store, [channel], poll_s=poll_s, clock=clock)
