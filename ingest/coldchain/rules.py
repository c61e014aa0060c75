"""Excursions and alarms over a fridge's temperature readings.

Each reading is taken to hold until the next one (as a logger's sample stands for its
interval). Readings further apart than ``max_sample_spacing`` leave a gap between them:
nothing is known there, so a gap is reported as such, is never counted as in range, and
breaks a run (a "continuous" period has to be seen to be continuous). The last reading
before a gap, and the very last reading, hold no time.

Rules, after the WHO PQS E006 30-day logger, plus the operator's own early warning:

- heat alarm: one continuous period above ``heat_alarm_above_c`` (+8 °C) *longer than*
  ``heat_alarm_after`` (10 h), so exactly 10 h raises nothing;
- freeze alarm: ``freeze_alarm_at_or_below_c`` (−0.5 °C) *or below* for
  ``freeze_alarm_after`` (60 min) or more;
- early warning: above ``early_warning_above_c`` for ``early_warning_after`` or more;
- excursion: a run out of ``[low_c, high_c]`` *longer than* ``excursion_after``.

The assessment is a pure function of the readings in a window, not an incremental state
machine: readings from a bus that was offline arrive late and out of order, and
recomputing the window from storage gives the same answer whatever the arrival order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ingest.local_days import require_aware

AlarmKind = Literal["heat", "freeze", "early_warning"]
Direction = Literal["high", "low"]


class TemperatureSample(Protocol):
    """Anything with a time and a temperature, e.g. ``protocol.models.FridgeSample``."""

    @property
    def t(self) -> datetime: ...

    @property
    def temp_c(self) -> float | None: ...


@dataclass(frozen=True)
class Reading:
    t: datetime
    temp_c: float | None


class ColdChainConfig(BaseModel):
    """Rules for one fridge; the defaults are a 2–8 °C vaccine fridge."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low_c: float = 2.0
    high_c: float = 8.0
    max_sample_spacing: timedelta = Field(default=timedelta(minutes=15), gt=timedelta(0))
    # Door openings during a consultation warm the air for a few minutes; shorter runs
    # out of range are not excursions.
    excursion_after: timedelta = Field(default=timedelta(minutes=15), ge=timedelta(0))
    heat_alarm_above_c: float = 8.0
    heat_alarm_after: timedelta = Field(default=timedelta(hours=10), gt=timedelta(0))
    freeze_alarm_at_or_below_c: float = -0.5
    freeze_alarm_after: timedelta = Field(default=timedelta(minutes=60), gt=timedelta(0))
    early_warning_above_c: float = 8.0
    early_warning_after: timedelta = Field(default=timedelta(minutes=30), gt=timedelta(0))

    @model_validator(mode="after")
    def _ordered_range(self) -> Self:
        if not self.low_c < self.high_c:
            raise ValueError(f"low_c {self.low_c} must be below high_c {self.high_c}")
        return self


@dataclass(frozen=True)
class HeldReading:
    """A reading and the time it stands for: ``[start, end)``, empty before a gap."""

    start: datetime
    end: datetime
    temp_c: float


@dataclass(frozen=True)
class DataGap:
    start: datetime
    end: datetime

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True)
class Timeline:
    readings: tuple[HeldReading, ...]
    gaps: tuple[DataGap, ...]

    @property
    def first(self) -> datetime | None:
        return self.readings[0].start if self.readings else None

    @property
    def last(self) -> datetime | None:
        return self.readings[-1].start if self.readings else None


def timeline(samples: Iterable[TemperatureSample], max_sample_spacing: timedelta) -> Timeline:
    """Order the readings, drop empty and repeated ones, find the gaps.

    A reading without a temperature (sensor error) is dropped, so the time around it
    becomes a gap when the readings either side are too far apart.
    """
    usable: list[tuple[datetime, float]] = []
    for s in sorted(samples, key=lambda s: require_aware(s.t, "reading")):
        if s.temp_c is None:
            continue
        if not math.isfinite(s.temp_c):
            raise ValueError(f"temperature at {s.t.isoformat()} is not a number: {s.temp_c}")
        t = require_aware(s.t, "reading")
        if usable and usable[-1][0] == t:
            continue
        usable.append((t, s.temp_c))
    held: list[HeldReading] = []
    gaps: list[DataGap] = []
    for i, (t, temp) in enumerate(usable):
        end = t
        if i + 1 < len(usable):
            following = usable[i + 1][0]
            if following - t <= max_sample_spacing:
                end = following
            else:
                gaps.append(DataGap(t, following))
        held.append(HeldReading(t, end, temp))
    return Timeline(tuple(held), tuple(gaps))


@dataclass(frozen=True)
class TemperatureRun:
    """Contiguous readings meeting one condition: from the first reading to the time the
    condition stopped holding (the next reading), or to the last reading."""

    readings: tuple[HeldReading, ...]
    # The run reaches the last reading of the data: it may still be going on.
    ongoing: bool
    # The run stops at a gap in the data, not at a reading back to normal.
    cut_by_gap: bool

    @property
    def start(self) -> datetime:
        return self.readings[0].start

    @property
    def end(self) -> datetime:
        return self.readings[-1].end

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    @property
    def min_c(self) -> float:
        return min(r.temp_c for r in self.readings)

    @property
    def max_c(self) -> float:
        return max(r.temp_c for r in self.readings)


def runs(line: Timeline, condition: Callable[[float], bool]) -> list[TemperatureRun]:
    """Maximal runs of readings meeting ``condition``, broken by a reading that does not
    and by every gap."""
    found: list[TemperatureRun] = []
    current: list[HeldReading] = []
    readings = line.readings

    def close(next_index: int) -> None:
        if not current:
            return
        found.append(
            TemperatureRun(
                readings=tuple(current),
                ongoing=next_index >= len(readings),
                cut_by_gap=next_index < len(readings) and current[-1].end == current[-1].start,
            )
        )
        current.clear()

    for i, r in enumerate(readings):
        if condition(r.temp_c):
            if current and current[-1].end != r.start:
                close(i)
            current.append(r)
        else:
            close(i)
    close(len(readings))
    return found


@dataclass(frozen=True)
class FridgeExcursion:
    """A run out of range longer than the configured duration."""

    direction: Direction
    run: TemperatureRun

    @property
    def peak_c(self) -> float:
        return self.run.max_c if self.direction == "high" else self.run.min_c


@dataclass(frozen=True)
class FridgeAlarm:
    kind: AlarmKind
    run: TemperatureRun
    # When the data first showed the rule met: the end of the reading that took the run
    # past the duration.
    raised_at: datetime

    @property
    def peak_c(self) -> float:
        return self.run.min_c if self.kind == "freeze" else self.run.max_c

    @property
    def key(self) -> str:
        """Stable name for acknowledging this alarm."""
        return f"{self.kind}@{self.run.start.isoformat()}"


@dataclass(frozen=True)
class _Rule:
    kind: AlarmKind
    condition: Callable[[float], bool]
    after: timedelta
    # Strict: the duration must exceed ``after``; otherwise reaching it is enough.
    strict: bool

    def met(self, duration: timedelta) -> bool:
        return duration > self.after if self.strict else duration >= self.after


def _alarm_rules(config: ColdChainConfig) -> tuple[_Rule, ...]:
    heat, freeze, warn = (
        config.heat_alarm_above_c,
        config.freeze_alarm_at_or_below_c,
        config.early_warning_above_c,
    )
    return (
        _Rule("heat", lambda c: c > heat, config.heat_alarm_after, strict=True),
        _Rule("freeze", lambda c: c <= freeze, config.freeze_alarm_after, strict=False),
        _Rule("early_warning", lambda c: c > warn, config.early_warning_after, strict=False),
    )


def _raised_at(run: TemperatureRun, rule: _Rule) -> datetime | None:
    for r in run.readings:
        if rule.met(r.end - run.start):
            return r.end
    return None


@dataclass(frozen=True)
class ColdChainReport:
    timeline: Timeline
    excursions: tuple[FridgeExcursion, ...]
    alarms: tuple[FridgeAlarm, ...]

    @property
    def gaps(self) -> tuple[DataGap, ...]:
        return self.timeline.gaps


def assess(samples: Iterable[TemperatureSample], config: ColdChainConfig) -> ColdChainReport:
    """Excursions, alarms and gaps of one fridge's readings (any order)."""
    line = timeline(samples, config.max_sample_spacing)
    excursions: list[FridgeExcursion] = []
    out_of_range: tuple[tuple[Direction, Callable[[float], bool]], ...] = (
        ("high", lambda c: c > config.high_c),
        ("low", lambda c: c < config.low_c),
    )
    for direction, condition in out_of_range:
        excursions.extend(
            FridgeExcursion(direction, run)
            for run in runs(line, condition)
            if run.duration > config.excursion_after
        )
    alarms: list[FridgeAlarm] = []
    for rule in _alarm_rules(config):
        for run in runs(line, rule.condition):
            raised = _raised_at(run, rule)
            if raised is not None:
                alarms.append(FridgeAlarm(rule.kind, run, raised))
    excursions.sort(key=lambda e: e.run.start)
    alarms.sort(key=lambda a: (a.raised_at, a.kind))
    return ColdChainReport(line, tuple(excursions), tuple(alarms))
