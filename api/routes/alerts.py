"""Alerts: listed for fleet managers, coordinators and engineers of the operator;
acknowledged by fleet managers and coordinators."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.auth import Principal, Role, require
from api.deps import get_store
from api.scope import TypedText, visible_vehicle, visible_vehicle_ids
from api.views import DEFAULT_LIMIT, AlertOut
from ingest.alerts import storage
from ingest.alerts.notify_settings import NotificationSettings, OperatorRouting, merged_routing
from ingest.alerts.rules import SEVERITY, AlertKind
from ingest.reports.configuration import load_notification_settings
from ingest.store import Store
from protocol.clock import SystemClock

router = APIRouter(prefix="/api/v1", tags=["alerts"])
StoreDep = Annotated[Store, Depends(get_store)]
Reader = Annotated[Principal, Depends(require(Role.FLEET_MANAGER, Role.COORDINATOR, Role.ENGINEER))]
Acknowledger = Annotated[Principal, Depends(require(Role.FLEET_MANAGER, Role.COORDINATOR))]
_clock = SystemClock()


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
    ids = (
        [visible_vehicle(store, caller, vehicle).id]
        if vehicle
        else visible_vehicle_ids(store, caller)
    )
    found = storage.list_alerts(
        store.engine, vehicle_ids=ids, active=active, kinds=kind, limit=limit
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
    counts = storage.notification_counts(store.engine)
    return DeliveriesOut(
        delivered=counts.get("delivered", 0),
        pending=counts.get("pending", 0),
        abandoned=counts.get("abandoned", 0),
        failed_attempts=storage.failed_attempts(store.engine),
        last_error=storage.last_failure(store.engine),
        by_channel={
            channel: ChannelCounts(**c)
            for channel, c in storage.notification_counts_by_channel(store.engine).items()
        },
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
            for a in storage.abandoned_notifications(store.engine, operators=_operators(caller))
        ],
    )


def _operators(caller: Principal) -> list[str] | None:
    """Whose recipients the caller may see: every operator's for admins."""
    if caller.role is Role.ADMIN:
        return None
    return [] if caller.operator is None else [caller.operator]


def _routing_in_force(store: Store, caller: Principal) -> dict[str, Any]:
    found = load_notification_settings(store)
    if found is None:
        raise HTTPException(status_code=503, detail="the ingest has recorded no routing yet")
    with store.engine.connect() as conn:
        stored = storage.operator_routings(conn)
    routes = [r for r in found.get("routes", []) if str(r.get("operator")) not in stored]
    roles: dict[str, list[str]] = dict(found.get("roles", {}))
    people: dict[str, Any] = dict(found.get("people", {}))
    changed: dict[str, dict[str, str]] = {}
    for operator, routing in sorted(stored.items()):
        body = OperatorRouting.model_validate_json(routing.body).model_dump(mode="json")
        routes.extend(body["routes"])
        roles.update(body["roles"])
        people.update(body["people"])
        changed[operator] = {"by": routing.changed_by, "at": routing.changed_at.isoformat()}
    routes = [r for r in routes if caller.sees(str(r.get("operator")))]
    named = {name for r in routes for step in r.get("steps", []) for name in step}
    shown = {p for name in named for p in roles.get(name, [name])}
    return {
        **found,
        "routes": routes,
        "roles": {k: v for k, v in roles.items() if k in named},
        "people": {k: v for k, v in people.items() if k in shown},
        "set_from_the_api": {k: v for k, v in changed.items() if caller.sees(k)},
    }


@router.get("/alerts/routing")
def routing(
    store: StoreDep,
    caller: Annotated[Principal, Depends(require(Role.ENGINEER, Role.FLEET_MANAGER))],
) -> dict[str, Any]:
    """Who is told of which alert, when and how: the ingest's ``[notifications]``
    settings (without the SMTP password nor the SMS gateway's headers), with each
    operator's routing set from the API in place of its routes there. A fleet manager
    sees the routes of their operators only."""
    return _routing_in_force(store, caller)


def _settings_to_check(found: dict[str, Any]) -> NotificationSettings:
    """The recorded settings as a model, their secrets (not recorded) stood in for: what
    a routing is checked against (recipients, channels configured)."""
    return NotificationSettings.model_validate(
        {
            "people": found.get("people", {}),
            "roles": found.get("roles", {}),
            "routes": found.get("routes", []),
            "smtp": {"host": "smtp", "sender": "x@x.fr"} if found.get("smtp") else None,
            "sms": {"url": "http://sms"} if found.get("sms") else None,
        }
    )


@router.put("/alerts/routing/{operator}")
def set_routing(
    operator: str,
    body: OperatorRouting,
    store: StoreDep,
    caller: Annotated[Principal, Depends(require(Role.FLEET_MANAGER))],
) -> dict[str, Any]:
    """Set who the operator's alerts reach (people, roles, routes), in place of its routes
    in the settings file, from the next alert on; alerts already routed keep their route.
    Admins, and fleet managers of that operator."""
    if not caller.sees(operator) or not any(v.operator == operator for v in store.vehicles()):
        raise HTTPException(status_code=404, detail=f"no operator {operator!r} among yours")
    found = load_notification_settings(store)
    if found is None:
        raise HTTPException(status_code=503, detail="the ingest has recorded no routing yet")
    with store.engine.begin() as conn:
        stored = {
            op: OperatorRouting.model_validate_json(s.body)
            for op, s in storage.operator_routings(conn).items()
        }
        try:
            merged_routing(_settings_to_check(found), {**stored, operator: body})
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=_reason(exc)) from None
        storage.save_operator_routing(
            conn, operator, body.model_dump_json(), caller.name, _clock.now()
        )
    return _routing_in_force(store, caller)


def _reason(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
    return str(exc)


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
