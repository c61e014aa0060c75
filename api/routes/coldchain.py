"""The medical fridge's alarms and logger history, for the people who answer for it."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal, Role, require
from api.deps import ClockDep, get_store
from api.scope import (
    ConfigurationDep,
    Day,
    RowId,
    TypedText,
    checked_period,
    last_days,
    local_today,
    utc_bounds,
)
from ingest.coldchain.daily import DayStatus, alarm_history
from ingest.reports.coldchain import FridgeAlarmOut, alarms_csv, filled_days
from ingest.services import coldchain as service
from ingest.store import Store

router = APIRouter(prefix="/api/v1/coldchain", tags=["cold chain"])
StoreDep = Annotated[Store, Depends(get_store)]
Reader = Annotated[Principal, Depends(require(Role.FLEET_MANAGER, Role.COORDINATOR, Role.ENGINEER))]
Acknowledger = Annotated[Principal, Depends(require(Role.FLEET_MANAGER, Role.COORDINATOR))]


class AlarmAckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: TypedText = Field(
        min_length=1,
        max_length=1000,
        description="what was checked or done (e.g. vaccines quarantined, pharmacist called)",
    )


class HistoryDay(BaseModel):
    date: date
    status: DayStatus
    heat_alarm: bool
    freeze_alarm: bool
    early_warning: bool


class HistoryOut(BaseModel):
    vehicle: str
    timezone: str
    last_day: date
    days: list[HistoryDay]


def csv_response(text: str, filename: str) -> Response:
    return Response(
        content=text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/alarms", response_model=None)
def list_alarms(
    *,
    store: StoreDep,
    caller: Reader,
    configuration: ConfigurationDep,
    vehicle: str | None = None,
    start: Annotated[Day | None, Query(alias="from")] = None,
    end: Annotated[Day | None, Query(alias="to")] = None,
    ongoing: bool | None = None,
    include_withdrawn: bool = False,
    output: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> list[FridgeAlarmOut] | Response:
    """Fridge alarms (heat, freeze, early warning), newest first, with acknowledgements.

    ``from``/``to`` are local days: alarms whose run touches them. ``format=csv`` gives
    the alarm log for the pharmacy's file.
    """
    zone = ZoneInfo(configuration.timezone)
    lo = hi = None
    if start is not None and end is not None:
        checked_period(start, end, max_days=3660)
    if start is not None:
        lo = utc_bounds(start, start, zone)[0]
    if end is not None:
        hi = utc_bounds(end, end, zone)[1]
    found = service.alarms_of(
        store,
        caller,
        vehicle=vehicle or None,
        start=lo,
        end=hi,
        ongoing=ongoing,
        include_withdrawn=include_withdrawn,
        limit=limit,
    )
    alarms = [FridgeAlarmOut.of(a) for a in found]
    if output == "csv":
        name = f"fridge-alarms-{vehicle or 'all'}.csv"
        return csv_response(alarms_csv(alarms, zone), name)
    return alarms


@router.post("/alarms/{alarm_id}/ack")
def acknowledge_alarm(
    *, alarm_id: RowId, body: AlarmAckIn, store: StoreDep, clock: ClockDep, caller: Acknowledger
) -> FridgeAlarmOut:
    """Record who acknowledged the alarm, when, and what they did."""
    found = service.acknowledge(store, caller, alarm_id, body.comment, clock.now())
    return FridgeAlarmOut.of(found)


@router.get("/history")
def history(
    *,
    store: StoreDep,
    clock: ClockDep,
    caller: Reader,
    configuration: ConfigurationDep,
    vehicle: str,
    last_day: Day | None = None,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
) -> HistoryOut:
    """The logger's alarm history: one line per day up to ``last_day`` (default today),
    oldest first; a day without readings is shown as no data."""
    zone = ZoneInfo(configuration.timezone)
    now = clock.now()
    last = last_day or local_today(now, zone)
    first, last = last_days(last, days)
    records = [
        r
        for r, _, _ in filled_days(
            service.fridge_days(store, caller, vehicle, first, last), first, last, zone, now
        )
    ]
    return HistoryOut(
        vehicle=vehicle,
        timezone=zone.key,
        last_day=last,
        days=[
            HistoryDay(
                date=h.day,
                status=h.status,
                heat_alarm=h.heat_alarm,
                freeze_alarm=h.freeze_alarm,
                early_warning=h.early_warning,
            )
            for h in alarm_history(records, last, days)
        ],
    )
