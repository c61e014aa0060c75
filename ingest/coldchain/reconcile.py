"""Keep stored fridge alarms in step with alarms recomputed from the readings.

An alarm is stored under its key (kind and start of its run) so that a person can
acknowledge it. Late readings can move a run's start (an earlier reading arrives) or
merge two runs (a gap is filled): the recomputed alarm then has another key, but it is
still the alarm someone may have acknowledged. So a recomputed alarm takes over the
stored alarm of the same kind whose run it overlaps, keeping its identity and its
acknowledgement; a stored alarm the readings no longer support is withdrawn, not
deleted, so the record of what was shown and acknowledged stays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ingest.coldchain.rules import AlarmKind, FridgeAlarm


@dataclass(frozen=True)
class StoredAlarm:
    id: int
    kind: AlarmKind
    key: str
    run_start: datetime
    run_end: datetime
    raised_at: datetime
    peak_c: float
    ongoing: bool
    cut_by_gap: bool
    withdrawn: bool

    def shows(self, alarm: FridgeAlarm) -> bool:
        """The stored row already says everything ``alarm`` says."""
        return not self.withdrawn and (
            self.kind,
            self.key,
            self.run_start,
            self.run_end,
            self.raised_at,
            self.peak_c,
            self.ongoing,
            self.cut_by_gap,
        ) == (
            alarm.kind,
            alarm.key,
            alarm.run.start,
            alarm.run.end,
            alarm.raised_at,
            alarm.peak_c,
            alarm.run.ongoing,
            alarm.run.cut_by_gap,
        )


@dataclass(frozen=True)
class AlarmPlan:
    insert: tuple[FridgeAlarm, ...] = ()
    # Stored id → the recomputed alarm it now is (its run, its key, ongoing or not).
    update: tuple[tuple[int, FridgeAlarm], ...] = ()
    withdraw: tuple[int, ...] = ()
    unchanged: tuple[int, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.insert or self.update or self.withdraw)


def _overlaps(stored: StoredAlarm, alarm: FridgeAlarm) -> bool:
    return alarm.run.start <= stored.run_end and stored.run_start <= alarm.run.end


def _overlap_length(stored: StoredAlarm, alarm: FridgeAlarm) -> float:
    start = max(stored.run_start, alarm.run.start)
    end = min(stored.run_end, alarm.run.end)
    return (end - start).total_seconds()


def reconcile(stored: Sequence[StoredAlarm], fresh: Sequence[FridgeAlarm]) -> AlarmPlan:
    """What to write so that ``stored`` (the alarms of a window) becomes ``fresh``."""
    unmatched = {s.id: s for s in stored}
    rows = dict(unmatched)
    by_key = {(s.kind, s.key): s for s in stored}
    inserts: list[FridgeAlarm] = []
    updates: list[tuple[int, FridgeAlarm]] = []
    leftovers: list[FridgeAlarm] = []
    for alarm in fresh:
        match = by_key.get((alarm.kind, alarm.key))
        if match is not None and match.id in unmatched:
            del unmatched[match.id]
            updates.append((match.id, alarm))
        else:
            leftovers.append(alarm)
    for alarm in leftovers:
        candidates = [
            s
            for s in unmatched.values()
            if s.kind == alarm.kind and _overlaps(s, alarm) and not s.withdrawn
        ]
        if not candidates:
            inserts.append(alarm)
            continue
        best = max(candidates, key=lambda s: (_overlap_length(s, alarm), -s.id))
        del unmatched[best.id]
        updates.append((best.id, alarm))
    return AlarmPlan(
        insert=tuple(inserts),
        update=tuple((i, a) for i, a in updates if not rows[i].shows(a)),
        withdraw=tuple(s.id for s in unmatched.values() if not s.withdrawn),
        unchanged=tuple(i for i, a in updates if rows[i].shows(a)),
    )
