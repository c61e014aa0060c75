"""Calendar days in a local time zone, as UTC instants.

Daily figures (distance, energy, fridge logs) are counted per local day, because that is
the day the crew and the coordinators live in; samples are UTC. A local day is 23 or 25
hours long on the days the clocks change, which these bounds respect.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class LocalDay:
    """One calendar day in ``zone``: ``[start, end)`` in UTC."""

    day: date
    zone: ZoneInfo
    start: datetime
    end: datetime

    @classmethod
    def of(cls, day: date, zone: ZoneInfo) -> LocalDay:
        start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
        return cls(day=day, zone=zone, start=start, end=end)

    @property
    def length(self) -> timedelta:
        return self.end - self.start


def require_aware(t: datetime, what: str = "time") -> datetime:
    """``t`` in UTC; a naive datetime is refused because its zone would be a guess."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{what} {t.isoformat()} has no time zone; give an aware datetime")
    return t.astimezone(UTC)


def local_date(t: datetime, zone: ZoneInfo) -> date:
    return require_aware(t).astimezone(zone).date()


def days_between(first: datetime, last: datetime, zone: ZoneInfo) -> list[LocalDay]:
    """Every local day from the one holding ``first`` to the one holding ``last``."""
    d0, d1 = local_date(first, zone), local_date(last, zone)
    if d1 < d0:
        raise ValueError(f"{last.isoformat()} is before {first.isoformat()}")
    return [LocalDay.of(d0 + timedelta(days=i), zone) for i in range((d1 - d0).days + 1)]


# Month names as French reports write them.
MONTHS_FR: Final = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
