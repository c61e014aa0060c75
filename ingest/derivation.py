"""Derived state kept right whichever ingest stores a bus's batches, in whatever order.

The domain's observers (punctuality, cold chain, daily marks, alerts) run on the batches
a group stored, one vehicle at a time, under that vehicle's lock
(:class:`~ingest.store.coordination.Coordinator`). An ingest that was not the last to
derive the vehicle first forgets what it remembers of it, so the observers re-derive from
the stored samples (the arrival detector, rebuilt from the vehicle's latest day).

Each group's backlog row (written with its batches) is settled once its derived state is
done. Groups an ingest could not derive (an observer failed) and groups left by an ingest
that died are derived again from the stored samples by :meth:`Derivation.housekeep`,
called by the writer thread between groups.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Final

from ingest.pipeline import BatchObserver
from ingest.store import BacklogEntry, Coordinator, Store
from ingest.store.coordination import backlog, forget_groups
from ingest.store.reads import stored_batches
from protocol.wire import Batch

log = logging.getLogger(__name__)

RECOVER_EVERY_S: Final = 5.0
RECOVERY_LOCK: Final = "derivation-recovery"


class Derivation:
    """The :class:`~ingest.pipeline.Ingestor`'s derivation step; the writer thread's alone."""

    def __init__(
        self,
        store: Store,
        coordinator: Coordinator,
        observers: Sequence[BatchObserver],
        forget: Sequence[Callable[[str], None]] = (),
        recover_every_s: float = RECOVER_EVERY_S,
    ) -> None:
        self._store = store
        self.coordinator = coordinator
        self._observers = list(observers)
        self._forget = list(forget)
        self._recover_every_s = recover_every_s
        self._next_no = 1
        self._open: set[int] = set()  # committed in the group being handled
        self._settled: set[int] = set()  # derived; their rows go with the next group
        self._failed: set[int] = set()  # to derive again from the stored samples
        self._next_recovery = -math.inf
        self.recovered = 0

    # --- with the intake -------------------------------------------------------------

    def entry(self) -> BacklogEntry:
        """The backlog row to write with the next group of batches."""
        no = self._next_no
        self._next_no += 1
        return BacklogEntry(self.coordinator.holder, no, tuple(sorted(self._settled)))

    def committed(self, entry: BacklogEntry) -> None:
        self._settled.difference_update(entry.settled)
        self._open.add(entry.group_no)

    def __call__(self, batches: Sequence[Batch]) -> None:
        """Derive what the groups just committed stored (``batches``: the new ones)."""
        done = self.derive_batches(batches)
        (self._settled if done else self._failed).update(self._open)
        self._open.clear()

    # --- deriving ----------------------------------------------------------------------

    def derive_batches(self, batches: Sequence[Batch], *, stale: bool = False) -> bool:
        by_vehicle: dict[str, list[Batch]] = defaultdict(list)
        for batch in batches:
            by_vehicle[batch.vehicle].append(batch)
        done = True
        for vehicle in sorted(by_vehicle):
            done = self.derive(vehicle, by_vehicle[vehicle], stale=stale) and done
        return done

    def derive(self, vehicle: str, batches: Sequence[Batch], *, stale: bool = False) -> bool:
        """Run every observer on ``vehicle``'s ``batches`` under its lock; False if one
        failed (what it remembers of the vehicle is then forgotten)."""
        done = True
        try:
            with self.coordinator.vehicle(vehicle) as fresh:
                if stale or not fresh:
                    self._forget_vehicle(vehicle)
                for observer in self._observers:
                    try:
                        observer(batches)
                    except Exception:
                        done = False
                        log.exception("observer %r failed on %s's batches", observer, vehicle)
        except Exception:
            done = False
            log.exception("could not derive the state of %s", vehicle)
        if not done:
            self._forget_vehicle(vehicle)
        return done

    def _forget_vehicle(self, vehicle: str) -> None:
        for forget in self._forget:
            forget(vehicle)

    # --- between groups -------------------------------------------------------------------

    def housekeep(self, *, now: float | None = None) -> None:
        """Every few seconds: drop the rows of settled groups, and derive again the groups
        that failed here or were left by an ingest that is gone."""
        clock = time.monotonic() if now is None else now
        if clock < self._next_recovery:
            return
        self._next_recovery = clock + self._recover_every_s
        try:
            self._forget_settled()
            self.recover()
        except Exception:
            log.exception("derivation backlog: pass failed; again in %.0f s", self._recover_every_s)

    def recover(self) -> int:
        """Derive again every group left undone (see :meth:`housekeep`); returns how many."""
        me = self.coordinator.holder
        recovered = 0
        with self.coordinator.exclusively(RECOVERY_LOCK):
            alive: dict[str, bool] = {}
            for row in backlog(self._store.engine):
                if row.holder == me:
                    if row.group_no not in self._failed:
                        continue
                else:
                    if row.holder not in alive:
                        alive[row.holder] = self.coordinator.alive(row.holder)
                    if alive[row.holder]:
                        continue
                log.info(
                    "deriving again %d vehicle(s) stored at %s by %s",
                    len(row.spans),
                    row.stored_at.isoformat(),
                    "this ingest" if row.holder == me else f"ingest {row.holder[:8]}, now gone",
                )
                done = True
                for vehicle, (lo, hi) in sorted(row.spans.items()):
                    found = stored_batches(self._store.engine, vehicle, lo, hi)
                    if found:
                        done = self.derive(vehicle, found, stale=True) and done
                if not done:
                    continue
                forget_groups(self._store.engine, row.holder, [row.group_no])
                if row.holder == me:
                    self._failed.discard(row.group_no)
                recovered += 1
        self.recovered += recovered
        return recovered

    def close(self) -> None:
        """At a clean stop: the settled groups' rows go (the rest stay, for the next)."""
        self._forget_settled()

    def _forget_settled(self) -> None:
        if self._settled:
            forget_groups(self._store.engine, self.coordinator.holder, self._settled)
            self._settled.clear()
