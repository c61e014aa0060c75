"""The reports' visit figures (:class:`~ingest.visit_figures.VisitFigures`) from the stored
visits, with coordinators' changes applied as the visits API applies them.

A period holds the visits scheduled to arrive in it. Of those, the figures count the
visits that are due: their scheduled arrival has passed, or the bus already arrived.
Visits still ahead (the timetable is listed some days in advance) are not counted, so the
current year's report says what happened so far; a visit cancelled in advance counts as
cancelled once its time has come. A held visit is one with an arrival (detected or
corrected) that is neither missed nor cancelled. :func:`counted_visits` is that rule, and
every report (punctuality, footprint, the funder's year) takes its visits from it.

A period with no stored visit at all (before the system ran, or a vehicle without a
timetable) answers None, "not recorded", rather than zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from ingest.footprint.avoided import VisitAttendance
from ingest.punctuality.kpis import VisitResult, figures
from ingest.punctuality.ledger import CoordinatorChange, VisitState, visit_state
from ingest.punctuality.storage import PunctualityStore
from ingest.punctuality.visit_rows import VisitRow
from ingest.store import Store
from ingest.visit_figures import PunctualitySummary, VisitCounts
from protocol.clock import Clock, SystemClock

HELD = ("early", "on_time", "late")


@dataclass(frozen=True)
class VisitAsItStands:
    row: VisitRow
    state: VisitState

    @property
    def held(self) -> bool:
        return self.state.arrival is not None and self.state.status in HELD

    @property
    def result(self) -> VisitResult:
        return VisitResult(
            self.row.vehicle, self.row.stop, self.row.day, self.state.status, self.state.delay
        )


def as_they_stand(
    rows: Iterable[VisitRow], changes: Mapping[str, Sequence[CoordinatorChange]], now: datetime
) -> list[VisitAsItStands]:
    """Each visit with the coordinators' changes applied, as the visits API shows it."""
    return [VisitAsItStands(r, visit_state(r.facts, changes.get(r.id, []), now)) for r in rows]


def due(visits: Sequence[VisitAsItStands], now: datetime) -> list[VisitAsItStands]:
    return [
        v for v in visits if v.row.facts.scheduled_arrival <= now or v.state.arrival is not None
    ]


def counted_visits(
    rows: Iterable[VisitRow], changes: Mapping[str, Sequence[CoordinatorChange]], now: datetime
) -> list[VisitAsItStands]:
    """The visits a report counts, of those of its period: the due ones (see the module),
    with coordinators' changes applied."""
    return due(as_they_stand(rows, changes, now), now)


def visit_counts(visits: Sequence[VisitAsItStands], now: datetime) -> VisitCounts | None:
    if not visits:
        return None
    counted = due(visits, now)
    return VisitCounts(
        scheduled=len(counted),
        held=sum(1 for v in counted if v.held),
        cancelled=sum(1 for v in counted if v.state.status == "cancelled"),
    )


def punctuality_summary(
    visits: Sequence[VisitAsItStands], now: datetime
) -> PunctualitySummary | None:
    if not visits:
        return None
    f = figures("all", (v.result for v in due(visits, now)))
    mean = None if f.mean_delay_min is None else round(f.mean_delay_min, 1)
    return PunctualitySummary(
        early=f.early, on_time=f.on_time, late=f.late, missed=f.missed, mean_delay_min=mean
    )


def attendance(visits: Sequence[VisitAsItStands]) -> list[VisitAttendance] | None:
    """The held visits with a count of patients seen. None when nothing is known: no visit
    at all, held visits none of which has a count, or a counted visit whose stop has no
    nearest-surgery distance on record (the fleet file was not loaded since it was added)."""
    if not visits:
        return None
    held = [v for v in visits if v.held]
    counted = [v for v in held if v.state.patients_seen is not None]
    if held and not counted:
        return None
    found: list[VisitAttendance] = []
    for v in counted:
        assert v.state.patients_seen is not None
        if v.row.nearest_surgery_km is None:
            return None
        found.append(
            VisitAttendance(v.row.id, v.row.stop, v.state.patients_seen, v.row.nearest_surgery_km)
        )
    return found


class StoredVisitFigures:
    """Reads the visits and coordinators' changes of a :class:`Store` (the API's)."""

    def __init__(self, store: Store, clock: Clock | None = None) -> None:
        self._db = PunctualityStore(store)
        self._clock = clock or SystemClock()

    def _visits(
        self, vehicle: str, start: datetime, end: datetime
    ) -> tuple[list[VisitAsItStands], datetime]:
        rows = self._db.visits_arriving_between(vehicle, start, end)
        changes = self._db.changes(r.id for r in rows)
        now = self._clock.now()
        return as_they_stand(rows, changes, now), now

    def attendance(
        self, vehicle: str, start: datetime, end: datetime
    ) -> Sequence[VisitAttendance] | None:
        visits, _ = self._visits(vehicle, start, end)
        return attendance(visits)

    def counts(self, vehicle: str, start: datetime, end: datetime) -> VisitCounts | None:
        visits, now = self._visits(vehicle, start, end)
        return visit_counts(visits, now)

    def punctuality(
        self, vehicle: str, start: datetime, end: datetime
    ) -> PunctualitySummary | None:
        visits, now = self._visits(vehicle, start, end)
        return punctuality_summary(visits, now)
