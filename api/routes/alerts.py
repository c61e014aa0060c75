"""Alerts: listed for fleet managers, coordinators and engineers of the operator;
acknowledged by fleet managers and coordinators."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal, Role, require
from api.deps import ClockDep, get_store
from api.scope import RowId, TypedText
from api.views import DEFAULT_LIMIT, AlertOut
from ingest.alerts.notify_settings import OperatorRouting
from ingest.alerts.rules import SEVERITY, AlertKind
from ingest.services import alerts as service
from ingest.store import Store

router = APIRouter(prefix="/api/v1", tags=["alerts"])
StoreDep = Annotated[Store, Depends(get_store)]
Reader = Annotated[Principal, Depends(require(Role.FLEET_MANAGER, Role.COORDINATOR, Role.ENGINEER))]
Acknowledger = Annotated[Principal, Depends(require(Role.FLEET_MANAGER, Role.COORDINATOR))]


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: TypedText | None = Field(default=None, max_length=1000)


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
    found = service.alerts_of(
        store, caller, vehicle=vehicle or None, active=active, kinds=kind, limit=limit
    )
    return [AlertOut.of(a) for a in found]


class ChannelCounts(BaseModel):
    delivered: int
    pending: int
    abandoned: int


class AbandonedOut(BaseModel):
    id: int
    alert_id: int
    event: str
    channel: str
    recipient: str
    attempts: int
    abandoned_at: datetime
    reason: str | None = Field(description="the last attempt's error")


class DeliveriesOut(BaseModel):
    delivered: int
    pending: int
    abandoned: int
    failed_attempts: int
    last_error: str | None
    by_channel: dict[str, ChannelCounts] = Field(description="webhook, email, sms")
    abandoned_latest: list[AbandonedOut] = Field(
        description="the 50 latest given up about the caller's alerts (all for admins), "
        "newest first"
    )


@router.get("/alerts/deliveries")
def deliveries(
    store: StoreDep, caller: Annotated[Principal, Depends(require(Role.ENGINEER))]
) -> DeliveriesOut:
    """How notifications fared (webhook, e-mail, SMS): delivered, waiting for a retry,
    given up and why."""
    found = service.deliveries(store, caller)
    return DeliveriesOut(
        delivered=found.counts.get("delivered", 0),
        pending=found.counts.get("pending", 0),
        abandoned=found.counts.get("abandoned", 0),
        failed_attempts=found.failed_attempts,
        last_error=found.last_error,
        by_channel={channel: ChannelCounts(**c) for channel, c in found.by_channel.items()},
        abandoned_latest=[
            AbandonedOut(
                id=a.id,
                alert_id=a.alert_id,
                event=a.event,
                channel=a.channel,
                recipient=a.recipient,
                attempts=a.attempts,
                abandoned_at=a.abandoned_at,
                reason=a.reason,
            )
            for a in found.abandoned
        ],
    )


@router.get("/alerts/routing")
def routing(
    store: StoreDep,
    caller: Annotated[Principal, Depends(require(Role.ENGINEER, Role.FLEET_MANAGER))],
) -> dict[str, Any]:
    """Who is told of which alert, when and how: the ingest's ``[notifications]``
    settings (without the SMTP password nor the SMS gateway's headers), with each
    operator's routing set from the API in place of its routes there. A fleet manager
    sees the routes of their operators only."""
    return service.routing_in_force(store, caller)


@router.put("/alerts/routing/{operator}")
def set_routing(
    operator: str,
    body: OperatorRouting,
    store: StoreDep,
    clock: ClockDep,
    caller: Annotated[Principal, Depends(require(Role.FLEET_MANAGER))],
) -> dict[str, Any]:
    """Set who the operator's alerts reach (people, roles, routes), in place of its routes
    in the settings file, from the next alert on; alerts already routed keep their route.
    Admins, and fleet managers of that operator."""
    return service.set_routing(store, caller, operator, body, clock.now())


@router.get("/alerts/kinds")
def alert_kinds(caller: Reader) -> dict[str, str]:
    """Every kind of alert and its severity."""
    return {str(kind): str(severity) for kind, severity in SEVERITY.items()}


@router.post("/alerts/{alert_id}/ack")
def acknowledge_alert(
    *, alert_id: RowId, body: AckIn, store: StoreDep, clock: ClockDep, caller: Acknowledger
) -> AlertOut:
    """Record who acknowledged the alert, when, and why."""
    return AlertOut.of(service.acknowledge(store, caller, alert_id, body.comment, clock.now()))
