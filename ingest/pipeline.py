"""Messages in, outcomes out: validated, de-duplicated, stored or quarantined, in groups."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ingest.metrics import IngestMetrics, lag_seconds
from ingest.store import Quarantined, Store
from ingest.validation import Limits, validate_message
from protocol.codec import ProtocolError
from protocol.models import Batch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    received_at: datetime


@dataclass(frozen=True)
class Outcome:
    status: Literal["stored", "duplicate", "rejected"]
    reason: str = ""
    samples: int = 0


BatchObserver = Callable[[Sequence[Batch]], None]


class Ingestor:
    """Validates and stores messages; a group of messages is committed in one transaction.

    Raises only when the store fails; then nothing of the group was committed and the
    caller must not acknowledge any of it.
    """

    def __init__(
        self,
        store: Store,
        limits: Limits | None = None,
        observers: Sequence[BatchObserver] = (),
        metrics: IngestMetrics | None = None,
    ) -> None:
        self._store = store
        self.metrics = metrics
        self._observers = list(observers)
        self._limits = limits or Limits()
        self._known = frozenset(store.vehicle_ids())
        self._lock = threading.Lock()
        self.counters: Counter[str] = Counter()

    def refresh_fleet(self) -> None:
        self._known = frozenset(self._store.vehicle_ids())

    def handle(self, topic: str, payload: bytes, received_at: datetime) -> Outcome:
        return self.handle_many([Message(topic, payload, received_at)])[0]

    def handle_many(self, messages: Sequence[Message]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(messages)
        accepted: list[tuple[int, Batch, datetime]] = []
        quarantined: list[Quarantined] = []
        for i, m in enumerate(messages):
            try:
                batch = validate_message(
                    m.topic, m.payload, self._known, m.received_at, self._limits
                )
            except ProtocolError as exc:
                log.warning("rejected message on %s: %s", m.topic, exc)
                quarantined.append(
                    Quarantined(m.topic, m.payload, exc.reason, exc.detail, m.received_at)
                )
                outcomes[i] = Outcome("rejected", exc.reason)
                continue
            accepted.append((i, batch, m.received_at))
        stored = self._store.save_batches([(b, t) for _, b, t in accepted], quarantined)
        for (i, batch, _), new in zip(accepted, stored, strict=True):
            n = len(batch.samples)
            outcomes[i] = Outcome("stored" if new else "duplicate", samples=n)
        result = [o for o in outcomes if o is not None]
        self._count(result)
        if self.metrics is not None:
            self.metrics.observe_group(
                [(o.status, o.reason, o.samples) for o in result],
                [
                    lag_seconds(t, max(s.t for s in b.samples))
                    for (_, b, t), new in zip(accepted, stored, strict=True)
                    if new
                ],
            )
        self._notify([b for (_, b, _), new in zip(accepted, stored, strict=True) if new])
        return result

    def add_observer(self, observer: BatchObserver) -> None:
        self._observers.append(observer)

    def _notify(self, new_batches: list[Batch]) -> None:
        """Tell the domain (punctuality, cold chain, alerts) what was just committed.

        Runs after the commit: a failing observer is logged and does not stop the
        message being acknowledged, so what observers derive must be re-derivable from
        the stored samples.
        """
        if not new_batches:
            return
        for observer in self._observers:
            try:
                observer(new_batches)
            except Exception:
                log.exception("observer %r failed on %d batches", observer, len(new_batches))

    def _count(self, outcomes: Sequence[Outcome]) -> None:
        with self._lock:
            for o in outcomes:
                if o.status == "rejected":
                    self.counters[f"rejected.{o.reason}"] += 1
                elif o.status == "duplicate":
                    self.counters["duplicates"] += 1
                else:
                    self.counters["stored_batches"] += 1
                    self.counters["stored_samples"] += o.samples
