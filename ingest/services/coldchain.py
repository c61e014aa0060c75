"""The medical fridge for the staff: its alarms (listed, acknowledged) and its days."""

from __future__ import annotations

from datetime import date, datetime

from ingest.coldchain import storage
from ingest.coldchain.storage import FridgeAlarmRecord, StoredFridgeDay
from ingest.services import audit
from ingest.services.common import (
    ConflictError,
    NotFoundError,
    Viewer,
    unit_of_work,
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
    with unit_of_work(store) as conn:
        found = storage.alarm(conn, alarm_id)
        if found is None or not viewer.sees(found.operator):
            raise NotFoundError(f"no fridge alarm {alarm_id} among yours")
        outcome = storage.acknowledge_alarm(conn, alarm_id, viewer.name, now, comment)
        if outcome == "acknowledged":
            audit.record(
                conn, viewer, "fridge_alarm.ack", f"fridge alarm {alarm_id}", now, comment=comment
            )
        after = storage.alarm(conn, alarm_id)
    if after is None:
        raise NotFoundError(f"no fridge alarm {alarm_id} among yours")
    if outcome == "already":
        when = after.ack_at.isoformat() if after.ack_at else "?"
        raise ConflictError(
            f"fridge alarm {alarm_id} was already acknowledged by {after.ack_by} at {when}"
        )
    return after


def fridge_days(
    store: Store, viewer: Viewer, vehicle: str, first: date, last: date
) -> list[StoredFridgeDay]:
    """The fridge's recorded days from ``first`` to ``last`` (local dates)."""
    (found,) = visible_vehicle_ids(store, viewer, vehicle)
    return storage.days(store.engine, found, first, last)
