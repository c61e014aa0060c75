"""Alerts: listed for fleet managers, coordinators and engineers of the operator;
acknowledged by fleet managers and coordinators."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from itertools import islice
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal, Role, require
from api.deps import get_store
from api.scope import visible_vehicle, visible_vehicle_ids
from ingest.alerts import storage
from ingest.alerts.rules import SEVERITY, AlertKind, Severity
from ingest.reports.coldchain import AckOut
from ingest.store import Store
from protocol.clock import SystemClock

router = APIRouter(prefix="/api/v1", tags=["alerts"])
DEFAULT_LIMIT = 200
StoreDep = Annotated[Store, Depends(get_store)]
Reader = Annotated[Principal, Depends(require(Role.FLEET_MANAGER, Role.COORDINATOR, Role.ENGINEER))]
Acknowledger = Annotated[Principal, Depends(require(Role.FLEET_MANAGER, Role.COORDINATOR))]
_clock = SystemClock()


class AlertOut(BaseModel):
    id: int
    vehicle: str
    kind: AlertKind
    subject: str
    severity: Severity
    message: str
    detail: dict[str, Any]
    since: datetime = Field(description="when the condition began, as the data shows")
    ended: datetime | None
    raised_at: datetime
    cleared_at: datetime | None
    active: bool
    acknowledged: AckOut | None

    @classmethod
    def of(cls, a: storage.AlertRecord) -> AlertOut:
        ack = AckOut.of(a.ack_by, a.ack_at, a.ack_comment)
        return cls(
            id=a.id,
            vehicle=a.vehicle,
            kind=a.kind,
            subject=a.subject,
            severity=a.severity,
            message=a.message,
            detail=a.detail,
            since=a.since,
            ended=a.ended,
            raised_at=a.raised_at,
            cleared_at=a.cleared_at,
            active=a.active,
            acknowledged=ack,
        )


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str | None = Field(default=None, max_length=1000)


@router.get("/alerts")
def list_alerts(
    *,
    store: StoreDep,
    caller: Reader,
    active: Annotated[bool | None, Query(description="true: active only; false: cleared")] = None,
    vehicle: str | None = None,
    kind: Annotated[list[AlertKind] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = DEFAULT_LIMIT,
) -> list[AlertOut]:
    """Alerts of the caller's vehicles, newest first."""
    ids = (
        [visible_vehicle(store, caller, vehicle).id]
        if vehicle
        else visible_vehicle_ids(store, caller)
    )
    found = storage.list_alerts(
        store.engine, vehicle_ids=ids, active=active, kinds=kind, limit=limit
    )
    return [AlertOut.of(a) for a in found]


def active_alerts_out(records: Iterable[storage.AlertRecord], caller: Principal) -> list[AlertOut]:
    """What ``GET /alerts?active=true`` answers the caller, from every active alert
    (newest first)."""
    mine = (a for a in records if a.active and caller.sees(a.operator))
    return [AlertOut.of(a) for a in islice(mine, DEFAULT_LIMIT)]


class DeliveriesOut(BaseModel):
    delivered: int
    pending: int
    abandoned: int
    failed_attempts: int
    last_error: str | None


@router.get("/alerts/deliveries")
def deliveries(
    store: StoreDep, caller: Annotated[Principal, Depends(require(Role.ENGINEER))]
) -> DeliveriesOut:
    """How the webhook's notifications fared: delivered, waiting for a retry, given up."""
    counts = storage.notification_counts(store.engine)
    return DeliveriesOut(
        delivered=counts.get("delivered", 0),
        pending=counts.get("pending", 0),
        abandoned=counts.get("abandoned", 0),
        failed_attempts=storage.failed_attempts(store.engine),
        last_error=storage.last_failure(store.engine),
    )


@router.get("/alerts/kinds")
def alert_kinds(caller: Reader) -> dict[str, str]:
    """Every kind of alert and its severity."""
    return {str(kind): str(severity) for kind, severity in SEVERITY.items()}


@router.post("/alerts/{alert_id}/ack")
def acknowledge_alert(
    *, alert_id: int, body: AckIn, store: StoreDep, caller: Acknowledger
) -> AlertOut:
    """Record who acknowledged the alert, when, and why."""
    found = storage.get_alert(store.engine, alert_id)
    if found is None or not caller.sees(found.operator):
        raise HTTPException(status_code=404, detail=f"no alert {alert_id} among yours")
    outcome = storage.acknowledge_alert(
        store.engine, alert_id, caller.name, _clock.now(), body.comment
    )
    after = storage.get_alert(store.engine, alert_id)
    if outcome == "already" and after is not None:
        raise HTTPException(
            status_code=409,
            detail=f"alert {alert_id} was already acknowledged by {after.ack_by} "
            f"at {after.ack_at.isoformat() if after.ack_at else '?'}",
        )
    if after is None:
        raise HTTPException(status_code=404, detail=f"no alert {alert_id} among yours")
    return AlertOut.of(after)
