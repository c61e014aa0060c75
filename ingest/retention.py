"""Prunes old raw samples on a schedule, in the ingest process."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from ingest.store import Store
from protocol.clock import Clock, SystemClock

log = logging.getLogger(__name__)


class RetentionPruner:
    """Every ``every_s`` seconds, deletes raw samples older than ``keep_days``."""

    def __init__(
        self, store: Store, keep_days: float, every_s: float = 3600.0, clock: Clock | None = None
    ) -> None:
        self._store = store
        self._keep = timedelta(days=keep_days)
        self._every = every_s
        self._clock = clock or SystemClock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)

    def prune_once(self) -> dict[str, int]:
        removed = self._store.prune(self._clock.now() - self._keep)
        if any(removed.values()):
            log.info("retention: removed %s", removed)
        return removed

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.prune_once()
            except Exception:
                log.exception("retention: pruning failed; trying again later")
            self._stop.wait(self._every)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
