"""The medical fridge for the staff: its alarms (listed, acknowledged) and its days."""

from __future__ import annotations

from datetime import date, datetime

from ingest.coldchain import storage
from ingest.coldchain.storage import FridgeAlarmRecord, StoredFridgeDay
from ingest.services import acknowledgements
from ingest.services.common import (
    Viewer,
    visible_vehicle_ids,
)
from ingest.store import Store


def alarms_of(
    store: Store,
    viewer: Viewer,
    *,
    vehicle: str | None,
    start: datetime | None = None,
    end: datetime | None = None,
    ongoing: bool | None = None,
    include_withdrawn: bool = False,
    limit: int = 1000,
) -> list[FridgeAlarmRecord]:
    """The viewer's fridge alarms whose run touches ``[start, end)``, newest first."""
    return storage.list_alarms(
        store.engine,
        vehicle_ids=visible_vehicle_ids(store, viewer, vehicle),
        start=start,
        end=end,
        ongoing=ongoing,
        include_withdrawn=include_withdrawn,
        limit=limit,
    )


def acknowledge(
    store: Store, viewer: Viewer, alarm_id: int, comment: str, now: datetime
) -> FridgeAlarmRecord:
    """Record who acknowledged the alarm, when, and what they did; the first
    acknowledgement stands (ConflictError, naming it, for a second one)."""
    return acknowledgements.acknowledge(
        store,
        viewer,
        what="fridge alarm",
        action="fridge_alarm.ack",
        row_id=alarm_id,
        read=storage.alarm,
        record=storage.acknowledge_alarm,
        comment=comment,
        now=now,
    )


def fridge_days(
    store: Store, viewer: Viewer, vehicle: str, first: date, last: date
) -> list[StoredFridgeDay]:
    """The fridge's recorded days from ``first`` to ``last`` (local dates)."""
    (found,) = visible_vehicle_ids(store, viewer, vehicle)
    return storage.days(store.engine, found, first, last)
