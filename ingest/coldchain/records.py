"""What the cold chain records, as it hands it to the time-series translator."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from ingest.coldchain.daily import FridgeDay
from ingest.coldchain.reconcile import StoredAlarm


@dataclass(frozen=True)
class FridgeDayRecorded:
    vehicle: str
    record: FridgeDay
    zone: ZoneInfo | str
    complete: bool


@dataclass(frozen=True)
class FridgeAlarmChanged:
    """An alarm as it now stands, and as it stood before if late readings moved it."""

    vehicle: str
    alarm: StoredAlarm
    previous: StoredAlarm | None = None
