"""A ``late_arrival`` alert while a bus is expected at its next visit later than on time.

The next visit is the vehicle's earliest visit still pending (no arrival, not cancelled,
its window open). Its expected arrival is the ETA the ingest keeps from the latest
position (:mod:`ingest.punctuality.eta`); a bus that has not arrived by the end of the
on-time band will be late whatever an older ETA said, so the clock bounds the ETA from
below. The alert is raised when that expectation passes the scheduled arrival plus the
on-time band's upper end, and clears when the bus arrives, the visit is cancelled or its
window closes (it is then missed), or a newer ETA is back within the band. A visit whose
ETA is ``doubtful`` (the bus can no longer make it) or ``not_confirmed`` (it stands off its
round or drives away) raises it too, whatever the expected time: the bus may not come.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from ingest.alerts.rules import AlertKind, Condition
from ingest.punctuality.ledger import VisitState, visit_state
from ingest.punctuality.storage import PunctualityStore
from ingest.punctuality.visit_rows import VisitRow
from ingest.store import Store

LATE_ARRIVAL: Final[AlertKind] = "late_arrival"
# Visits whose window may still be open now, and the next ones: a visit spans hours, not days.
LOOK_BACK: Final = timedelta(days=1)
LOOK_AHEAD: Final = timedelta(days=1)
UNSURE: Final = {
    "doubtful": "may not come (can no longer arrive within the visit); ",
    "not_confirmed": "not confirmed (standing off its round or driving away); ",
}
# The alerts' subject column holds 100 characters; a longer visit id is shortened uniquely.
MAX_SUBJECT = 100


def _utc(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC")


def alert_subject(visit_id: str) -> str:
    if len(visit_id) <= MAX_SUBJECT:
        return visit_id
    digest = hashlib.sha256(visit_id.encode()).hexdigest()[:12]
    return f"{visit_id[: MAX_SUBJECT - 13]}~{digest}"


def next_visit(visits: Sequence[tuple[VisitRow, VisitState]]) -> VisitRow | None:
    pending = [row for row, state in visits if state.status == "pending"]
    return min(pending, key=lambda r: (r.facts.scheduled_arrival, r.id), default=None)


def late_arrival(
    vehicle: str, visits: Sequence[tuple[VisitRow, VisitState]], now: datetime
) -> Condition | None:
    """The condition of ``vehicle`` at ``now`` given its visits as they stand, or None."""
    visit = next_visit(visits)
    if visit is None:
        return None
    facts = visit.facts
    latest_on_time = facts.scheduled_arrival + facts.on_time_until
    unsure = visit.eta is not None and visit.eta_state in ("doubtful", "not_confirmed")
    basis: str
    if visit.eta is not None and (unsure or visit.eta > latest_on_time):
        basis = visit.eta_state if unsure and visit.eta_state else "eta"
        expected, since = max(visit.eta, now), visit.eta_from or now
    elif now > latest_on_time:
        expected, since, basis = now, latest_on_time, "not arrived"
    else:
        return None
    delay_min = (expected - facts.scheduled_arrival).total_seconds() / 60
    at_least = " or later" if basis in UNSURE or basis == "not arrived" else ""
    return Condition(
        vehicle,
        LATE_ARRIVAL,
        alert_subject(visit.id),
        since,
        f"{vehicle}: {UNSURE.get(basis, '')}expected at {visit.stop_name} at "
        f"{_utc(expected)}{at_least}, {delay_min:.0f} min after its scheduled arrival "
        f"({_utc(facts.scheduled_arrival)})",
        {
            "visit_id": visit.id,
            "stop": visit.stop,
            "scheduled_arrival": facts.scheduled_arrival.isoformat(),
            "expected_arrival": expected.isoformat(),
            "expected_delay_min": round(delay_min, 1),
            "basis": basis,
            "eta_from": None if visit.eta_from is None else visit.eta_from.isoformat(),
            "eta_state": visit.eta_state,
            "eta_earliest": None if visit.eta_earliest is None else visit.eta_earliest.isoformat(),
            "eta_latest": None if visit.eta_latest is None else visit.eta_latest.isoformat(),
        },
    )


class LateArrivals:
    """A :class:`~ingest.alerts.evaluator.ConditionSource` reading the stored visits."""

    kinds: frozenset[AlertKind] = frozenset({LATE_ARRIVAL})

    def __init__(self, store: Store) -> None:
        self._db = PunctualityStore(store)

    def conditions(self, vehicle: str, now: datetime) -> list[Condition]:
        rows = self._db.visits_arriving_between(vehicle, now - LOOK_BACK, now + LOOK_AHEAD)
        changes = self._db.changes(r.id for r in rows)
        states = [(r, visit_state(r.facts, changes.get(r.id, []), now)) for r in rows]
        found = late_arrival(vehicle, states, now)
        return [] if found is None else [found]
