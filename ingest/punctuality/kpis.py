"""Punctuality figures over many visits: on-time rate, mean and 90th-percentile delay,
missed visits, grouped by vehicle, stop, weekday, day, ISO week or month.

The on-time rate is over the visits that were due: held (early, on time, late) or missed;
cancelled and still pending visits are counted but not rated. Delays are arrival delays
of held visits, in minutes; the 90th percentile interpolates between the nearest ranks
(``statistics.quantiles``, inclusive method).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal, get_args

from ingest.punctuality.classification import VisitStatus

GroupBy = Literal["vehicle", "stop", "weekday", "day", "week", "month"]
GROUPINGS: tuple[GroupBy, ...] = get_args(GroupBy)
WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class VisitResult:
    vehicle: str
    stop: str
    day: date
    status: VisitStatus
    delay: timedelta | None


@dataclass(frozen=True)
class PunctualityFigures:
    group: str
    visits: int
    held: int
    early: int
    on_time: int
    late: int
    missed: int
    cancelled: int
    pending: int
    on_time_rate: float | None
    mean_delay_min: float | None
    p90_delay_min: float | None


def group_key(result: VisitResult, group_by: GroupBy) -> tuple[int | str, str]:
    """(sort key, label) of the group a visit falls in."""
    if group_by == "vehicle":
        return result.vehicle, result.vehicle
    if group_by == "stop":
        return result.stop, result.stop
    if group_by == "weekday":
        n = result.day.isoweekday()
        return n, WEEKDAY_NAMES[n - 1]
    if group_by == "day":
        return result.day.isoformat(), result.day.isoformat()
    if group_by == "week":
        year, week, _ = result.day.isocalendar()
        return f"{year}-W{week:02d}", f"{year}-W{week:02d}"
    return result.day.strftime("%Y-%m"), result.day.strftime("%Y-%m")


def figures(label: str, results: Iterable[VisitResult]) -> PunctualityFigures:
    results = list(results)
    count = {s: 0 for s in get_args(VisitStatus)}
    delays: list[float] = []
    for r in results:
        count[r.status] += 1
        if r.status in ("early", "on_time", "late") and r.delay is not None:
            delays.append(r.delay.total_seconds() / 60)
    held = count["early"] + count["on_time"] + count["late"]
    due = held + count["missed"]
    p90: float | None = None
    if len(delays) == 1:
        p90 = delays[0]
    elif delays:
        p90 = statistics.quantiles(delays, n=10, method="inclusive")[8]
    return PunctualityFigures(
        group=label,
        visits=len(results),
        held=held,
        early=count["early"],
        on_time=count["on_time"],
        late=count["late"],
        missed=count["missed"],
        cancelled=count["cancelled"],
        pending=count["pending"],
        on_time_rate=count["on_time"] / due if due else None,
        mean_delay_min=statistics.fmean(delays) if delays else None,
        p90_delay_min=p90,
    )


def punctuality_figures(
    results: Iterable[VisitResult], group_by: GroupBy
) -> list[PunctualityFigures]:
    """One row per group, in a natural order (weekdays Monday first, periods in time)."""
    if group_by not in GROUPINGS:
        raise ValueError(f"cannot group by {group_by!r}: use one of {', '.join(GROUPINGS)}")
    groups: dict[tuple[int | str, str], list[VisitResult]] = defaultdict(list)
    for r in results:
        groups[group_key(r, group_by)].append(r)
    return [figures(label, groups[(key, label)]) for key, label in sorted(groups)]
