"""Pushes alert notifications to a webhook: POST JSON, retried with back-off.

Runs in its own thread from the notifications table, so a slow or dead receiver never
holds up the ingest, and what was not delivered before a restart is sent after it.
Notifications of one alert go out in order (a clear never overtakes its raise). The
standard library's HTTP client is enough for one JSON POST with a timeout.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
from collections import Counter
from datetime import timedelta
from typing import Final

from ingest.alerts import storage
from ingest.store import Store
from protocol.clock import Clock, SystemClock

log = logging.getLogger(__name__)

USER_AGENT: Final = "medicobus-alerts/1"


def backoff(attempts: int, first_s: float, max_s: float) -> timedelta:
    """The wait after ``attempts`` failed attempts: first_s, then doubling, capped."""
    return timedelta(seconds=min(max_s, first_s * 2 ** max(0, attempts - 1)))


class WebhookNotifier:
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
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL must be http(s)://, got {url!r}")
        self._store = store
        self._url = url
        self._timeout_s = timeout_s
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._poll_s = poll_s
        # Back-off is about the receiver recovering: wall time, whatever the ingest's clock.
        self._clock = clock or SystemClock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.counters: Counter[str] = Counter()

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="alert-webhook", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self._timeout_s + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.send_due()
            except Exception:
                log.exception("webhook: pass failed")
            self._wake.wait(self._poll_s)
            self._wake.clear()

    def send_due(self) -> int:
        """Attempt every notification that is due; returns how many were delivered."""
        sent = 0
        blocked: set[int] = set()
        for n in storage.open_notifications(self._store.engine):
            if self._stop.is_set():
                break
            if n.alert_id in blocked:
                continue
            now = self._clock.now()
            if n.next_attempt_at is not None and n.next_attempt_at > now:
                blocked.add(n.alert_id)
                continue
            lease_until = now + timedelta(seconds=self._timeout_s * 2 + 5)
            if not storage.lease(self._store.engine, n, lease_until):
                blocked.add(n.alert_id)
                continue
            attempts = n.attempts + 1
            error = self._post(n)
            done = self._clock.now()
            if error is None:
                storage.delivered(self._store.engine, n.id, done, attempts)
                self._count("delivered")
                sent += 1
                continue
            blocked.add(n.alert_id)
            self._count("failed_attempts")
            if attempts >= self._max_attempts:
                self._count("abandoned")
                log.error(
                    "webhook: gave up on notification %d (alert %d %s) after %d attempts: %s",
                    n.id,
                    n.alert_id,
                    n.event,
                    attempts,
                    error,
                )
                storage.failed(
                    self._store.engine,
                    n.id,
                    attempts=attempts,
                    error=error,
                    retry_at=None,
                    when=done,
                )
            else:
                retry_at = done + backoff(attempts, self._backoff_s, self._max_backoff_s)
                log.warning(
                    "webhook: notification %d (alert %d %s) failed (attempt %d): %s; retry at %s",
                    n.id,
                    n.alert_id,
                    n.event,
                    attempts,
                    error,
                    retry_at.isoformat(),
                )
                storage.failed(
                    self._store.engine,
                    n.id,
                    attempts=attempts,
                    error=error,
                    retry_at=retry_at,
                    when=done,
                )
        return sent

    def _count(self, what: str) -> None:
        with self._lock:
            self.counters[what] += 1

    def _post(self, n: storage.Notification) -> str | None:
        """POST the notification; None on a 2xx answer, else why not."""
        request = urllib.request.Request(
            self._url,
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
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code} {exc.reason}"
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return None if 200 <= status < 300 else f"HTTP {status}"
