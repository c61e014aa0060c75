"""What the public sees of an operator's week: places, times and the service's status.

No patient data, no coordinator's reason and no position of the bus: a stop's passage is
planned, on the way (with an expected time when the prediction comes from the bus's
position or its habits), on site, left, cancelled or not held. The crews' whereabouts
are thus told only as "on the way to the next stop", during the visits' own hours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from ingest.punctuality.ledger import CoordinatorChange, visit_state
from ingest.punctuality.storage import PunctualityStore
from ingest.punctuality.visit_rows import VisitRow
from ingest.store import Store

PublicStatus = Literal["planned", "on_the_way", "on_site", "left", "cancelled", "not_held"]
# An ETA shown to the public: one the bus's position or habits back, not the timetable
# restated, nor one the bus is not keeping.
TRUSTED_ETA_STATES = frozenset({"on_time", "early", "late"})
TRUSTED_ETA_SOURCES = frozenset({"position", "history"})
# Shown as late from this many minutes behind the timetable.
LATE_FROM_MIN = 5


@dataclass(frozen=True)
class PublicPassage:
    visit_id: str
    vehicle: str
    """The route of the static GTFS feed; the page and the calendars do not show it."""
    stop: str
    stop_name: str
    day: date
    scheduled_arrival: datetime
    scheduled_departure: datetime
    status: PublicStatus
    arrived: datetime | None
    left: datetime | None
    eta: datetime | None
    late_min: int | None
    """Minutes behind the timetable, rounded to 5, when LATE_FROM_MIN or more."""
    message: str | None = None
    """The coordinators' message to the public, if any."""


def _late(delay: timedelta | None) -> int | None:
    if delay is None:
        return None
    minutes = delay.total_seconds() / 60
    if minutes < LATE_FROM_MIN:
        return None
    return max(LATE_FROM_MIN, int(round(minutes / 5) * 5))


def _passage(row: VisitRow, now: datetime, changes: Sequence[CoordinatorChange]) -> PublicPassage:
    state = visit_state(row.facts, changes, now)
    scheduled = row.facts.scheduled_arrival
    eta = None
    late = None
    status: PublicStatus = "planned"
    if state.status == "cancelled":
        status = "cancelled"
    elif state.arrival is not None and state.departure is None:
        status = "on_site"
        late = _late(state.arrival - scheduled)
    elif state.arrival is not None:
        status = "left"
        late = _late(state.arrival - scheduled)
    elif state.status == "missed":
        status = "not_held"
    elif (
        row.eta is not None
        and row.eta_state in TRUSTED_ETA_STATES
        and row.eta_source in TRUSTED_ETA_SOURCES
    ):
        status = "on_the_way"
        eta = row.eta
        late = _late(row.eta - scheduled)
    return PublicPassage(
        visit_id=row.id,
        vehicle=row.vehicle,
        stop=row.stop,
        stop_name=row.stop_name,
        day=row.day,
        scheduled_arrival=scheduled,
        scheduled_departure=row.facts.scheduled_departure,
        status=status,
        arrived=state.arrival if status in ("on_site", "left") else None,
        left=state.departure if status == "left" else None,
        eta=eta,
        late_min=late,
        message=state.public_message,
    )


def public_passages(
    store: Store, operator: str, first: date, last: date, now: datetime
) -> list[PublicPassage]:
    """The operator's passages from ``first`` to ``last`` (local days), as the public may
    see them at ``now``, in timetable order."""
    db = PunctualityStore(store)
    rows = [r for r in db.visits_between(first, last) if r.operator == operator]
    changes = db.changes(r.id for r in rows)
    return sorted(
        (_passage(r, now, changes.get(r.id, [])) for r in rows),
        key=lambda p: (p.scheduled_arrival, p.stop),
    )
