"""How well detected arrivals and departures agree with what really happened.

The true events are the stays of a labelled day (see :mod:`simulators.labelled_days`):
when the bus came to rest in a stop's zone and when it left the zone. A detected event is
matched to a true event of the same vehicle, stop and kind (arrival or departure) no
further than ``tolerance`` away in time; pairs are taken closest first, each event at most
once. A detection left unmatched is a false positive, a true event left unmatched a false
negative.

Decoys are moments the bus is in a zone without arriving: a drive-by, a red light at the
zone's edge. An arrival detected at a decoy's stop during it (from ``decoy_slack`` before
it) is a false positive even when a true arrival is close enough to match it: the detector
mistook the red light for the arrival, whatever happened a minute later.

A censored true event happened before the fixes begin (the bus standing at the depot when
the day's data starts): no detector can time it, so it is matched like the others but
neither its pair nor its absence is scored.

Precision is matched / detected and recall matched / true (each 1.0 when there is nothing
to count); the time error is detected − true, and its 95th percentile is taken over the
absolute errors of all matched pairs, arrivals and departures together (nearest rank).
Pure: no clock, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from ingest.punctuality.detector import StopArrival, StopEvent

EventKind = Literal["arrival", "departure"]
DecoyKind = Literal["drive_by", "rest_in_zone"]
FalsePositiveReason = Literal["unmatched", "decoy"]

DEFAULT_TOLERANCE = timedelta(minutes=10)
DEFAULT_DECOY_SLACK = timedelta(seconds=30)


def _aware(t: datetime, what: str) -> None:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{what} time {t.isoformat()} has no time zone")


@dataclass(frozen=True)
class TrueEvent:
    """An arrival (came to rest in the zone) or departure (left the zone) that happened."""

    vehicle: str
    stop: str
    kind: EventKind
    t: datetime
    censored: bool = False
    # The receiver had no fix at that moment: no detector can observe it, only estimate it.
    in_outage: bool = False

    def __post_init__(self) -> None:
        _aware(self.t, f"true {self.kind} at {self.stop}")


@dataclass(frozen=True)
class DetectedEvent:
    """An arrival or departure some detector reported; an estimated arrival (inside a GPS
    outage) with its bounds."""

    vehicle: str
    stop: str
    kind: EventKind
    t: datetime
    earliest: datetime | None = None
    latest: datetime | None = None

    def __post_init__(self) -> None:
        _aware(self.t, f"detected {self.kind} at {self.stop}")

    @classmethod
    def of(cls, event: StopEvent) -> DetectedEvent:
        if isinstance(event, StopArrival):
            return cls(event.vehicle, event.stop, "arrival", event.t, event.earliest, event.latest)
        return cls(event.vehicle, event.stop, "departure", event.t)

    def bounds_hold(self, t: datetime) -> bool:
        """Whether ``t`` lies within the stated bounds (an observed event states none)."""
        return (
            self.earliest is not None
            and self.latest is not None
            and (self.earliest <= t <= self.latest)
        )


@dataclass(frozen=True)
class Decoy:
    """The bus in ``stop``'s zone from ``start`` to ``end`` without arriving there."""

    vehicle: str
    stop: str
    kind: DecoyKind
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        _aware(self.start, f"{self.kind} at {self.stop}: start")
        _aware(self.end, f"{self.kind} at {self.stop}: end")
        if self.end < self.start:
            raise ValueError(
                f"{self.kind} at {self.stop}: end {self.end.isoformat()} is before start "
                f"{self.start.isoformat()}"
            )

    def catches(self, event: DetectedEvent, slack: timedelta) -> bool:
        return (
            event.kind == "arrival"
            and event.vehicle == self.vehicle
            and event.stop == self.stop
            and self.start - slack <= event.t <= self.end
        )


@dataclass(frozen=True)
class MatchedPair:
    truth: TrueEvent
    detected: DetectedEvent

    @property
    def error_s(self) -> float:
        """Detected − true, in seconds: negative when the detector is early."""
        return (self.detected.t - self.truth.t).total_seconds()


@dataclass(frozen=True)
class FalsePositive:
    detected: DetectedEvent
    reason: FalsePositiveReason
    decoy: Decoy | None = None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q``-th percentile (0 < q ≤ 100) of ``values``; None if empty."""
    if not 0.0 < q <= 100.0:
        raise ValueError(f"percentile {q} is not in (0, 100]")
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100.0 * len(ordered))) - 1]


@dataclass(frozen=True)
class Scorecard:
    """The outcome of comparing detections with the truth (add scorecards to pool them)."""

    matched: tuple[MatchedPair, ...] = ()
    false_positives: tuple[FalsePositive, ...] = ()
    false_negatives: tuple[TrueEvent, ...] = ()
    censored: tuple[MatchedPair, ...] = field(default=(), compare=False)

    def __add__(self, other: Scorecard) -> Scorecard:
        return Scorecard(
            self.matched + other.matched,
            self.false_positives + other.false_positives,
            self.false_negatives + other.false_negatives,
            self.censored + other.censored,
        )

    @property
    def true_events(self) -> int:
        return len(self.matched) + len(self.false_negatives)

    @property
    def detections(self) -> int:
        return len(self.matched) + len(self.false_positives)

    @property
    def precision(self) -> float:
        return len(self.matched) / self.detections if self.detections else 1.0

    @property
    def recall(self) -> float:
        return len(self.matched) / self.true_events if self.true_events else 1.0

    @property
    def abs_errors_s(self) -> list[float]:
        return [abs(p.error_s) for p in self.matched]

    @property
    def p95_error_s(self) -> float | None:
        return percentile(self.abs_errors_s, 95.0)

    @property
    def max_error_s(self) -> float | None:
        return max(self.abs_errors_s, default=None)

    def of_kind(self, kind: EventKind) -> Scorecard:
        """The same comparison restricted to arrivals or to departures."""
        return Scorecard(
            tuple(p for p in self.matched if p.truth.kind == kind),
            tuple(fp for fp in self.false_positives if fp.detected.kind == kind),
            tuple(t for t in self.false_negatives if t.kind == kind),
            tuple(p for p in self.censored if p.truth.kind == kind),
        )

    @property
    def decoy_hits(self) -> int:
        return sum(1 for fp in self.false_positives if fp.reason == "decoy")


def pooled(scorecards: Iterable[Scorecard]) -> Scorecard:
    total = Scorecard()
    for card in scorecards:
        total += card
    return total


def score(
    truth: Sequence[TrueEvent],
    detected: Iterable[DetectedEvent | StopEvent],
    decoys: Sequence[Decoy] = (),
    *,
    tolerance: timedelta = DEFAULT_TOLERANCE,
    decoy_slack: timedelta = DEFAULT_DECOY_SLACK,
) -> Scorecard:
    """Match ``detected`` with ``truth`` (see the module docstring)."""
    if tolerance < timedelta(0):
        raise ValueError(f"tolerance {tolerance} is negative")
    if decoy_slack < timedelta(0):
        raise ValueError(f"decoy slack {decoy_slack} is negative")
    events = [d if isinstance(d, DetectedEvent) else DetectedEvent.of(d) for d in detected]

    false_positives: list[FalsePositive] = []
    candidates: list[int] = []
    for i, event in enumerate(events):
        decoy = next((d for d in decoys if d.catches(event, decoy_slack)), None)
        if decoy is not None:
            false_positives.append(FalsePositive(event, "decoy", decoy))
        else:
            candidates.append(i)

    pairs = sorted(
        (abs(events[i].t - true.t), events[i].t, true.t, i, j)
        for i in candidates
        for j, true in enumerate(truth)
        if (events[i].vehicle, events[i].stop, events[i].kind)
        == (true.vehicle, true.stop, true.kind)
        and abs(events[i].t - true.t) <= tolerance
    )
    detection_of: dict[int, int] = {}
    taken: set[int] = set()
    for _, _, _, i, j in pairs:
        if i not in taken and j not in detection_of:
            detection_of[j] = i
            taken.add(i)

    matched: list[MatchedPair] = []
    censored: list[MatchedPair] = []
    missed: list[TrueEvent] = []
    for j, true in enumerate(truth):
        if j in detection_of:
            pair = MatchedPair(true, events[detection_of[j]])
            (censored if true.censored else matched).append(pair)
        elif not true.censored:
            missed.append(true)
    false_positives += [FalsePositive(events[i], "unmatched") for i in candidates if i not in taken]
    false_positives.sort(key=lambda fp: fp.detected.t)
    return Scorecard(tuple(matched), tuple(false_positives), tuple(missed), tuple(censored))
