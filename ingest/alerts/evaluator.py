"""Runs the alert rules in a thread of its own, so the ingest's writer only notes which
vehicles sent something: those are evaluated in full as soon as the thread wakes, and
on every tick of the clock every vehicle is checked for silence (noticed only by time
passing) and against the extra sources."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.engine import Connection

from ingest.alerts import storage
from ingest.alerts.rules import (
    FRIDGE_KINDS,
    VEHICLE_KINDS,
    ActiveAlert,
    AlertKind,
    Condition,
    HealthThresholds,
    fridge_condition,
    offline,
    plan,
    vehicle_conditions,
)
from ingest.coldchain import storage as coldchain_storage
from ingest.store import Store
from protocol.clock import Clock
from protocol.wire import Batch

log = logging.getLogger(__name__)

# Raised once seen for ``HealthThresholds.confirm_after``.
CONFIRMED_KINDS: frozenset[AlertKind] = frozenset({"no_gps_fix", "low_battery"})

# Fridge alarms this old or older that never had an alert are not alerted any more:
# data that late is a record for the log, not news (the ingest refuses older samples).
FRIDGE_NEWS_HORIZON = timedelta(days=30)


class ConditionSource(Protocol):
    """More alert conditions from another part of the domain.

    The extension point for the punctuality side: e.g. a source of ``late_arrival``
    conditions (one per visit whose predicted arrival is late, subject = the visit's id)
    is passed to :class:`AlertEvaluator` and evaluated with the rest.
    """

    kinds: frozenset[AlertKind]

    def conditions(self, vehicle: str, now: datetime) -> Iterable[Condition]: ...


class AlertEvaluator:
    def __init__(
        self,
        store: Store,
        thresholds: HealthThresholds,
        clock: Clock,
        *,
        notify: bool = False,
        on_change: Callable[[], None] | None = None,
        sources: Sequence[ConditionSource] = (),
        tick_s: float = 5.0,
        vehicle_lock: Callable[[str], AbstractContextManager[object]] | None = None,
    ) -> None:
        """``vehicle_lock``: held while a vehicle is evaluated (ingests sharing a database
        take turns); ``ticking``, on by default, says whether this one evaluates what time
        alone changes (one ingest of those sharing a database does)."""
        self._store = store
        self._thresholds = thresholds
        self._clock = clock
        self._notify = notify
        self._on_change = on_change
        self._sources = list(sources)
        self._tick_s = tick_s
        self._vehicle_lock = vehicle_lock or (lambda _vehicle: contextlib.nullcontext())
        self.ticking = True
        # Conditions waiting for their confirmation (monotonic time first seen), and when
        # each vehicle is to be evaluated again for them.
        self._unconfirmed: dict[tuple[str, AlertKind, str], float] = {}
        self._recheck: dict[str, float] = {}
        # The evaluation thread and direct callers (tests, catch-up) take turns.
        self._lock = threading.Lock()
        self._dirty: set[str] = set()
        self._dirty_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.raised = 0
        self.cleared = 0

    def on_batches(self, batches: Sequence[Batch]) -> None:
        """Observer: note which vehicles to evaluate (the intake has moved their link state
        forward); returns at once."""
        with self._dirty_lock:
            self._dirty.update(b.vehicle for b in batches)
        self._wake.set()

    def evaluate(self, vehicles: Iterable[str] | None = None) -> list[tuple[str, int]]:
        """Evaluate every rule for ``vehicles`` (default: the whole fleet) now; returns
        (event, alert id) of what changed."""
        if vehicles is None:
            vehicles = sorted(self._store.vehicle_ids())
        return self._evaluate(vehicles, full=True)

    def tick(self) -> list[tuple[str, int]]:
        """What time alone changes: silence, and the extra sources, for every vehicle."""
        return self._evaluate(sorted(self._store.vehicle_ids()), full=False)

    def _evaluate(self, vehicles: Iterable[str], *, full: bool) -> list[tuple[str, int]]:
        now = self._clock.now()
        changes: list[tuple[str, int]] = []
        with self._lock:
            for vehicle in vehicles:
                with self._vehicle_lock(vehicle):
                    changes.extend(self._evaluate_one(vehicle, now, full=full))
        if changes and self._on_change is not None:
            self._on_change()
        return changes

    def _evaluate_one(self, vehicle: str, now: datetime, *, full: bool) -> list[tuple[str, int]]:
        kinds: set[AlertKind] = set(VEHICLE_KINDS | FRIDGE_KINDS) if full else {"offline"}
        with self._store.engine.begin() as conn:
            active = storage.active_alerts(conn, vehicle)
            if full:
                health = storage.vehicle_health(conn, vehicle)
                conditions = vehicle_conditions(
                    health, self._thresholds, now, active=(a.kind for a in active)
                )
                alarms = coldchain_storage.stored_alarms(conn, vehicle, now - FRIDGE_NEWS_HORIZON)
                conditions.extend(
                    c for a in alarms if (c := fridge_condition(vehicle, a)) is not None
                )
            else:
                link = storage.link_health(conn, vehicle)
                found = offline(link, self._thresholds, now)
                conditions = [] if found is None else [found]
            for source in self._sources:
                kinds |= source.kinds
                conditions.extend(source.conditions(vehicle, now))
            if full:
                conditions = self._from_history(conn, vehicle, conditions, active)
            known = storage.known_keys(conn, vehicle, FRIDGE_KINDS)
            todo = plan(
                conditions,
                active,
                scope=[(vehicle, k) for k in kinds],
                known=known,
                now=now,
            )
            changed = storage.apply_plan(conn, todo, now, notify=self._notify)
        for event, alert in changed:
            log.warning("alert %s: %s [%s #%d]", event, alert.message, alert.kind, alert.id)
            if event == "raised":
                self.raised += 1
            else:
                self.cleared += 1
        return [(event, alert.id) for event, alert in changed]

    def _from_history(
        self,
        conn: Connection,
        vehicle: str,
        conditions: list[Condition],
        active: Sequence[ActiveAlert],
    ) -> list[Condition]:
        """What the live state alone cannot say right, with batches still on their way
        (an outbox catching up, several ingests draining a backlog at their own pace):

        - a missing fix or a low battery is held back until seen for ``confirm_after``
          (the vehicle is evaluated again then): a GPS batch still on its way shows the
          other streams ahead of the fixes for a moment;
        - a low battery's start is when its readings went below the limit, from the
          stored readings, not the newest reading when it was first evaluated.
        """
        held = {a.key for a in active}
        kept: list[Condition] = []
        confirm = self._thresholds.confirm_after.total_seconds()
        clock = time.monotonic()
        seen_now: set[tuple[str, AlertKind, str]] = set()
        for c in conditions:
            if c.kind not in CONFIRMED_KINDS or c.key in held:
                kept.append(c)
                continue
            seen_now.add(c.key)
            first = self._unconfirmed.setdefault(c.key, clock)
            if clock - first < confirm:
                due = first + confirm
                with self._dirty_lock:
                    self._recheck[vehicle] = min(self._recheck.get(vehicle, due), due)
                continue
            if c.kind == "low_battery":
                start = storage.low_charge_since(conn, vehicle, self._thresholds.low_soc_pct)
                kept.append(replace(c, since=start or c.since))
            else:
                kept.append(c)
        for key in [k for k in self._unconfirmed if k[0] == vehicle and k not in seen_now]:
            del self._unconfirmed[key]
        return kept

    def _due_rechecks(self) -> list[str]:
        """The vehicles whose held-back conditions are due (call with ``_dirty_lock``)."""
        clock = time.monotonic()
        due = [v for v, t in self._recheck.items() if t <= clock]
        for v in due:
            del self._recheck[v]
        return due

    # --- the clock -----------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="alert-tick", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_tick = time.monotonic() + self._tick_s
        while not self._stop.is_set():
            with self._dirty_lock:
                wake_at = min([next_tick, *self._recheck.values()])
            self._wake.wait(max(0.0, wake_at - time.monotonic()))
            self._wake.clear()
            if self._stop.is_set():
                return
            with self._dirty_lock:
                self._dirty.update(self._due_rechecks())
                dirty, self._dirty = sorted(self._dirty), set()
            try:
                if dirty:
                    self._evaluate(dirty, full=True)
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + self._tick_s
                    if self.ticking:
                        self.tick()
            except Exception:
                # Evaluated again at the next wake-up: every rule reads the store afresh.
                with self._dirty_lock:
                    self._dirty.update(dirty)
                log.exception("alert evaluation failed; again in %.1f s", self._tick_s)
                self._stop.wait(self._tick_s)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
