"""Messages in, outcomes out: validated, de-duplicated, stored or quarantined, in groups."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal, NamedTuple, Protocol

from ingest.metrics import IngestMetrics, lag_seconds
from ingest.store import BacklogEntry, Quarantined, Store, database_unavailable, describe_failure
from ingest.validation import Limits, validate_message
from protocol.codec import ProtocolError
from protocol.wire import Batch

log = logging.getLogger(__name__)


# Named tuples rather than dataclasses: one of each per message, and a frozen
# dataclass costs several times as much to build.
class Message(NamedTuple):
    topic: str
    payload: bytes
    received_at: datetime


class Outcome(NamedTuple):
    status: Literal["stored", "duplicate", "rejected"]
    reason: str = ""
    samples: int = 0
    # The decoded batch, when stored or dropped as a copy.
    batch: Batch | None = None


BatchObserver = Callable[[Sequence[Batch]], None]


class DerivedState(Protocol):
    """What derives state from the batches stored (:class:`ingest.derivation.Derivation`):
    a backlog row written with each group, the derivation once the groups are committed,
    and what it does between groups."""

    def entry(self) -> BacklogEntry: ...

    def committed(self, entry: BacklogEntry) -> None: ...

    def __call__(self, batches: Sequence[Batch]) -> None: ...

    def housekeep(self) -> None: ...


class Ingestor:
    """Validates and stores messages; a group of messages is committed in one transaction.

    A message that passes validation but that the database refuses (a value no column
    holds) does not hold up the rest: the group is split and stored in halves until the
    message is alone, and that one is quarantined as ``store_failed`` with the
    database's message. Raises only when the database cannot be reached (down, locked,
    full): then the caller must not acknowledge what was not stored, and offers the
    group again later; what was stored is dropped as a duplicate then.
    """

    def __init__(
        self,
        store: Store,
        limits: Limits | None = None,
        observers: Sequence[BatchObserver] = (),
        metrics: IngestMetrics | None = None,
        derivation: DerivedState | None = None,
    ) -> None:
        """``derivation`` runs before the ``observers``, on the same new batches."""
        self._store = store
        self._derivation = derivation
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
            except Exception as exc:
                reason, detail = (
                    (exc.reason, exc.detail)
                    if isinstance(exc, ProtocolError)
                    else ("invalid_schema", f"{type(exc).__name__}: {exc}")
                )
                log.warning("rejected message on %s: %s: %s", m.topic, reason, detail)
                quarantined.append(Quarantined(m.topic, m.payload, reason, detail, m.received_at))
                outcomes[i] = Outcome("rejected", reason)
                continue
            accepted.append((i, batch, m.received_at))
        committed: list[Batch] = []
        try:
            saved = self._save_isolating(
                [(b, t, messages[i]) for i, b, t in accepted], quarantined, committed
            )
        except Exception:
            # The database went away while a refused batch was being isolated: what was
            # committed before is news all the same (offered again, it is a duplicate).
            self._notify(committed)
            raise
        stored = [kept is True for kept in saved]
        for (i, batch, _), kept in zip(accepted, saved, strict=True):
            if isinstance(kept, Quarantined):
                outcomes[i] = Outcome("rejected", kept.reason)
            else:
                n = len(batch.samples)
                outcomes[i] = Outcome("stored" if kept else "duplicate", samples=n, batch=batch)
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

    def _save_isolating(
        self,
        items: Sequence[tuple[Batch, datetime, Message]],
        quarantined: Sequence[Quarantined],
        committed: list[Batch],
    ) -> list[bool | Quarantined]:
        """Per item: True if stored, False if already stored, or the quarantine record
        written in its place. ``committed`` gathers the batches stored so far."""
        entry = self._derivation.entry() if self._derivation is not None else None
        try:
            flags = self._store.save_batches(
                [(b, t) for b, t, _ in items], quarantined, backlog=entry
            )
        except Exception as exc:
            if database_unavailable(exc):
                raise
            failure = exc
        else:
            if entry is not None and self._derivation is not None:
                self._derivation.committed(entry)
            committed.extend(b for (b, _, _), new in zip(items, flags, strict=True) if new)
            return list(flags)
        if len(items) > 1:
            half = len(items) // 2
            first = self._save_isolating(items[:half], quarantined, committed)
            return first + self._save_isolating(items[half:], (), committed)
        if items and quarantined:
            self._save_isolating((), quarantined, committed)
            return self._save_isolating(items, (), committed)
        if len(quarantined) > 1:
            half = len(quarantined) // 2
            self._save_isolating((), quarantined[:half], committed)
            self._save_isolating((), quarantined[half:], committed)
            return []
        # One message alone fails: make sure the database itself is there (this raises if
        # not) before blaming the message.
        self._store.ping()
        detail = describe_failure(failure)
        if items:
            _, received_at, m = items[0]
            log.error("quarantined a batch the database refused, on %s: %s", m.topic, detail)
            record = Quarantined(m.topic, m.payload, "store_failed", detail, received_at)
            self._store.save_batches([], [record])
            return [record]
        # A quarantine record the database refuses: keep why, without what it carried.
        (q,) = quarantined
        log.error("could not keep a rejected message from %s whole: %s", q.topic, detail)
        self._store.save_batches(
            [],
            [
                Quarantined(
                    q.topic.encode("ascii", "backslashreplace").decode(),
                    b"",
                    q.reason,
                    f"payload not kept ({detail})",
                    q.received_at,
                )
            ],
        )
        return []

    def housekeep(self) -> None:
        """Between groups, in the thread that handles them."""
        if self._derivation is not None:
            self._derivation.housekeep()

    def add_observer(self, observer: BatchObserver) -> None:
        self._observers.append(observer)

    def _notify(self, new_batches: list[Batch]) -> None:
        """Tell the domain (punctuality, cold chain, alerts) what was just committed.

        Runs after the commit: a failing observer is logged and does not stop the
        message being acknowledged, so what observers derive must be re-derivable from
        the stored samples.
        """
        if self._derivation is not None:
            try:
                self._derivation(new_batches)
            except Exception:
                log.exception("derivation failed on %d batches", len(new_batches))
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
