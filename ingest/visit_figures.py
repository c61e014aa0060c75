"""What the footprint and funder reports need from the visits, as an interface.

Visits (held, scheduled, patients seen, punctuality) belong to the punctuality side of
the domain. The reports ask these questions through :class:`VisitFigures`; an answer of
None means "not recorded", and the report then says so instead of showing a number.
:class:`NoVisitFigures` answers None to everything; the ``api`` command and the demo pass
:class:`~ingest.punctuality.figures.StoredVisitFigures`, which reads the stored visits, to
the API (``create_app(..., visit_figures=...)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ingest.footprint.avoided import VisitAttendance


@dataclass(frozen=True)
class VisitCounts:
    scheduled: int
    held: int
    cancelled: int = 0


@dataclass(frozen=True)
class PunctualitySummary:
    """Held visits by arrival class, over a period."""

    early: int
    on_time: int
    late: int
    missed: int
    mean_delay_min: float | None = None


class VisitFigures(Protocol):
    """Aggregates over the visits of one vehicle in ``[start, end)`` (UTC)."""

    def attendance(
        self, vehicle: str, start: datetime, end: datetime
    ) -> Sequence[VisitAttendance] | None:
        """Each held visit with its patients seen and its stop's nearest-surgery distance."""
        ...

    def counts(self, vehicle: str, start: datetime, end: datetime) -> VisitCounts | None: ...

    def punctuality(
        self, vehicle: str, start: datetime, end: datetime
    ) -> PunctualitySummary | None: ...


class NoVisitFigures:
    def attendance(
        self, vehicle: str, start: datetime, end: datetime
    ) -> Sequence[VisitAttendance] | None:
        return None

    def counts(self, vehicle: str, start: datetime, end: datetime) -> VisitCounts | None:
        return None

    def punctuality(
        self, vehicle: str, start: datetime, end: datetime
    ) -> PunctualitySummary | None:
        return None
