"""When a vehicle is in a state someone should look at, and when it no longer is.

Pure functions over what the store knows (:class:`VehicleHealth`, stored fridge alarms)
and the time: no clock, no database. :func:`plan` compares the conditions found with the
alerts already raised and says which to raise and which to clear, so that each episode
is raised once, whatever how often it is evaluated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal

from ingest.coldchain.reconcile import StoredAlarm

AlertKind = Literal[
    "offline",
    "no_gps_fix",
    "low_battery",
    "fridge_early_warning",
    "fridge_heat",
    "fridge_freeze",
    "late_arrival",
]
Severity = Literal["warning", "critical"]

SEVERITY: Final[Mapping[AlertKind, Severity]] = {
    "offline": "warning",
    "no_gps_fix": "warning",
    "low_battery": "warning",
    "fridge_early_warning": "warning",
    "fridge_heat": "critical",
    "fridge_freeze": "critical",
    "late_arrival": "warning",
}
VEHICLE_KINDS: Final[frozenset[AlertKind]] = frozenset({"offline", "no_gps_fix", "low_battery"})
FRIDGE_KINDS: Final[frozenset[AlertKind]] = frozenset(
    {"fridge_early_warning", "fridge_heat", "fridge_freeze"}
)

Detail = Mapping[str, str | float | int | bool | None]


@dataclass(frozen=True)
class Condition:
    """Something wrong with a vehicle, as the data shows it."""

    vehicle: str
    kind: AlertKind
    # What the condition is about, for conditions a vehicle can have several of at once
    # (one per fridge alarm, one per visit); "" for a state of the vehicle itself.
    subject: str
    since: datetime
    message: str
    detail: Detail = field(default_factory=dict)
    # Set when the condition is found only after it ended (late data): it is raised and
    # cleared together, so that it is on record and pushed.
    ended: datetime | None = None
    # A vehicle state comes back as a new episode; a subject happens once.
    repeatable: bool = True

    @property
    def key(self) -> tuple[str, AlertKind, str]:
        return (self.vehicle, self.kind, self.subject)

    @property
    def severity(self) -> Severity:
        return SEVERITY[self.kind]


@dataclass(frozen=True)
class ActiveAlert:
    id: int
    vehicle: str
    kind: AlertKind
    subject: str

    @property
    def key(self) -> tuple[str, AlertKind, str]:
        return (self.vehicle, self.kind, self.subject)


@dataclass(frozen=True)
class Clear:
    alert_id: int
    # When the condition ended, as far as the data tells (the clock, for a state that is
    # simply no longer there).
    ended: datetime


@dataclass(frozen=True)
class AlertPlan:
    # Conditions to raise; one with ``ended`` set is cleared as it is raised.
    raises: tuple[Condition, ...]
    clears: tuple[Clear, ...]


def plan(
    conditions: Iterable[Condition],
    active: Sequence[ActiveAlert],
    *,
    scope: Iterable[tuple[str, AlertKind]],
    known: Iterable[tuple[str, AlertKind, str]],
    now: datetime,
) -> AlertPlan:
    """Raise what is new, clear what ended.

    ``scope`` is the (vehicle, kind) pairs that were evaluated: an active alert outside
    it is left alone, one inside it without its condition is cleared. ``known`` holds the
    keys of every alert ever raised, so a condition that happens once (a fridge alarm)
    is never raised twice.
    """
    in_scope = set(scope)
    ever = set(known)
    by_key = {a.key: a for a in active}
    ongoing: set[tuple[str, AlertKind, str]] = set()
    raises: list[Condition] = []
    clears: dict[int, Clear] = {}
    for c in conditions:
        current = by_key.get(c.key)
        if c.ended is None:
            ongoing.add(c.key)
            if current is None and (c.repeatable or c.key not in ever):
                raises.append(c)
        elif current is not None:
            clears[current.id] = Clear(current.id, c.ended)
        elif c.key not in ever:
            raises.append(c)
    for a in active:
        if (a.vehicle, a.kind) in in_scope and a.key not in ongoing and a.id not in clears:
            clears[a.id] = Clear(a.id, now)
    return AlertPlan(tuple(raises), tuple(clears.values()))


# --- the vehicle's own state -----------------------------------------------------------


@dataclass(frozen=True)
class VehicleHealth:
    """What the store knows of one vehicle's link, GPS and auxiliary battery."""

    vehicle: str
    # When the ingest last received anything from it (its clock).
    last_seen: datetime | None
    # The newest status from the agent by its own time (online=False: its last will),
    # that time, and when it was received.
    online: bool | None
    status_t: datetime | None
    status_seen_at: datetime | None
    # Sample times: the latest valid fix, the latest and first samples of any stream.
    last_valid_fix: datetime | None
    latest_sample: datetime | None
    first_sample: datetime | None
    # The latest state of charge the battery monitor reported.
    soc_t: datetime | None = None
    soc_pct: float | None = None


@dataclass(frozen=True)
class HealthThresholds:
    offline_after: timedelta
    no_fix_after: timedelta
    low_soc_pct: float
    low_soc_clear_pct: float
    # A missing fix or a low battery is raised once it has been seen this long (as
    # Prometheus' ``for``): batches still on their way (an outbox catching up, several
    # ingests draining a backlog at their own pace) show one stream ahead of another, or
    # the newest readings without the older ones, for a moment.
    confirm_after: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if self.offline_after <= timedelta(0) or self.no_fix_after <= timedelta(0):
            raise ValueError("offline and no-fix timeouts must be > 0")
        if self.low_soc_clear_pct < self.low_soc_pct:
            raise ValueError("the low-battery alert must clear at or above where it is raised")


def _minutes(d: timedelta) -> str:
    return f"{d.total_seconds() / 60:.0f} min"


def _utc(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC")


def offline(h: VehicleHealth, th: HealthThresholds, now: datetime) -> Condition | None:
    """Offline: the agent said so (status online=false, its last will) and nothing newer
    than that status has come since, or silence past the timeout.

    An old status (replayed, or delivered late after an outage) never outweighs fresher
    samples: the state moves only forward in time.
    """
    stale = h.latest_sample is not None and h.status_t is not None and h.latest_sample > h.status_t
    if h.online is False and h.status_t is not None and not stale:
        # The status may have been composed long before it was sent (a last will is
        # written when the agent connects): when it was received says better when the
        # link was lost.
        since = h.status_seen_at or h.status_t
        return Condition(
            h.vehicle,
            "offline",
            "",
            since,
            f"{h.vehicle} is offline: its agent reported the link lost ({_utc(since)})",
            {"reason": "status", "status_t": h.status_t.isoformat()},
        )
    if h.last_seen is not None and now - h.last_seen > th.offline_after:
        return Condition(
            h.vehicle,
            "offline",
            "",
            h.last_seen,
            f"{h.vehicle} is offline: nothing received for {_minutes(now - h.last_seen)} "
            f"(last at {_utc(h.last_seen)})",
            {"reason": "silence", "last_seen": h.last_seen.isoformat()},
        )
    return None


def no_gps_fix(h: VehicleHealth, th: HealthThresholds) -> Condition | None:
    """Telemetry keeps coming but without a valid fix for too long.

    Judged on the samples' own times, not on the clock: a bus catching up after hours
    offline sends old samples first, and silence is the offline rule's business.
    """
    if h.latest_sample is None:
        return None
    since = h.last_valid_fix if h.last_valid_fix is not None else h.first_sample
    if since is None or h.latest_sample - since <= th.no_fix_after:
        return None
    what = "no valid GPS fix" if h.last_valid_fix is None else "no valid GPS fix since"
    when = "" if h.last_valid_fix is None else f" {_utc(since)}"
    return Condition(
        h.vehicle,
        "no_gps_fix",
        "",
        since,
        f"{h.vehicle}: {what}{when} ({_minutes(h.latest_sample - since)} of telemetry)",
        {"last_valid_fix": None if h.last_valid_fix is None else h.last_valid_fix.isoformat()},
    )


def low_battery(h: VehicleHealth, th: HealthThresholds, *, active: bool) -> Condition | None:
    """Below ``low_soc_pct`` raises; an active alert holds until ``low_soc_clear_pct``."""
    if h.soc_pct is None or h.soc_t is None:
        return None
    limit = th.low_soc_clear_pct if active else th.low_soc_pct
    if h.soc_pct >= limit:
        return None
    return Condition(
        h.vehicle,
        "low_battery",
        "",
        h.soc_t,
        f"{h.vehicle}: auxiliary battery at {h.soc_pct:.0f} % (alert below {th.low_soc_pct:.0f} %)",
        {"soc_pct": h.soc_pct, "t": h.soc_t.isoformat()},
    )


def vehicle_conditions(
    h: VehicleHealth,
    th: HealthThresholds,
    now: datetime,
    active: Iterable[AlertKind] = (),
) -> list[Condition]:
    kinds = set(active)
    found = [
        offline(h, th, now),
        no_gps_fix(h, th),
        low_battery(h, th, active="low_battery" in kinds),
    ]
    return [c for c in found if c is not None]


# --- the fridge --------------------------------------------------------------------------

_FRIDGE_WORDS: Final[Mapping[str, str]] = {
    "early_warning": "early warning",
    "heat": "heat alarm",
    "freeze": "freeze alarm",
}


def fridge_condition(vehicle: str, alarm: StoredAlarm) -> Condition | None:
    """The alert of a stored fridge alarm: active while its run goes on."""
    if alarm.withdrawn:
        return None
    kind: AlertKind = (
        "fridge_heat"
        if alarm.kind == "heat"
        else "fridge_freeze"
        if alarm.kind == "freeze"
        else "fridge_early_warning"
    )
    word = "lowest" if alarm.kind == "freeze" else "highest"
    return Condition(
        vehicle,
        kind,
        str(alarm.id),
        alarm.raised_at,
        f"{vehicle}: fridge {_FRIDGE_WORDS[alarm.kind]} since {_utc(alarm.run_start)} "
        f"({word} {alarm.peak_c:.1f} °C)",
        {
            "fridge_alarm_id": alarm.id,
            "fridge_alarm_key": alarm.key,
            "run_start": alarm.run_start.isoformat(),
            "run_end": alarm.run_end.isoformat(),
            "peak_c": alarm.peak_c,
        },
        ended=None if alarm.ongoing else alarm.run_end,
        repeatable=False,
    )
