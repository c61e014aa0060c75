"""One message in, one outcome out: validated, de-duplicated, stored or quarantined."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ingest.store import Store
from ingest.validation import Limits, validate_message
from protocol.codec import ProtocolError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    status: Literal["stored", "duplicate", "rejected"]
    reason: str = ""
    samples: int = 0


class Ingestor:
    def __init__(self, store: Store, limits: Limits | None = None) -> None:
        self._store = store
        self._limits = limits or Limits()
        self._known = frozenset(store.vehicle_ids())
        self._lock = threading.Lock()
        self.counters: Counter[str] = Counter()

    def refresh_fleet(self) -> None:
        self._known = frozenset(self._store.vehicle_ids())

    def handle(self, topic: str, payload: bytes, received_at: datetime) -> Outcome:
        """Process one message. Raises only on storage failure (the caller must not ack)."""
        try:
            batch = validate_message(topic, payload, self._known, received_at, self._limits)
        except ProtocolError as exc:
            log.warning("rejected message on %s: %s", topic, exc)
            self._store.quarantine(topic, payload, exc.reason, exc.detail, received_at)
            self._count(f"rejected.{exc.reason}")
            return Outcome("rejected", exc.reason)
        if not self._store.save_batch(batch, received_at):
            self._count("duplicates")
            return Outcome("duplicate", samples=len(batch.samples))
        self._count("stored_batches")
        self._count("stored_samples", len(batch.samples))
        return Outcome("stored", samples=len(batch.samples))

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counters[key] += n
