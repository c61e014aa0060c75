"""Alerts for the staff: listed, acknowledged, how their notifications fared, and who they
reach (each operator's routing, set from the API in place of the settings file's)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ingest.alerts import storage
from ingest.alerts.notify_settings import NotificationSettings, OperatorRouting, merged_routing
from ingest.alerts.records import AlertRecord
from ingest.reports.configuration import load_notification_settings
from ingest.services import acknowledgements, audit
from ingest.services.common import (
    NotFoundError,
    NotReadyError,
    RefusedError,
    Viewer,
    operators_seen,
    reading,
    unit_of_work,
    visible_vehicle_ids,
)
from ingest.store import Store


def alerts_of(
    store: Store,
    viewer: Viewer,
    *,
    vehicle: str | None,
    active: bool | None,
    kinds: Sequence[str] | None,
    limit: int,
) -> list[AlertRecord]:
    """The viewer's alerts (of one vehicle if named), newest first."""
    ids = visible_vehicle_ids(store, viewer, vehicle)
    return storage.list_alerts(
        store.engine, vehicle_ids=ids, active=active, kinds=kinds, limit=limit
    )


def acknowledge(
    store: Store, viewer: Viewer, alert_id: int, comment: str | None, now: datetime
) -> AlertRecord:
    """Record who acknowledged the alert, when and why; the first acknowledgement stands
    (ConflictError, naming it, for a second one)."""
    return acknowledgements.acknowledge(
        store,
        viewer,
        what="alert",
        action="alert.ack",
        row_id=alert_id,
        read=storage.get_alert,
        record=storage.acknowledge_alert,
        comment=comment,
        now=now,
    )


@dataclass(frozen=True)
class Deliveries:
    counts: dict[str, int]
    by_channel: dict[str, dict[str, int]]
    failed_attempts: int
    last_error: str | None
    abandoned: list[storage.AbandonedNotification]


def deliveries(store: Store, viewer: Viewer) -> Deliveries:
    """How notifications fared (webhook, e-mail, SMS), and the latest given up about the
    viewer's alerts."""
    engine = store.engine
    return Deliveries(
        counts=storage.notification_counts(engine),
        by_channel=storage.notification_counts_by_channel(engine),
        failed_attempts=storage.failed_attempts(engine),
        last_error=storage.last_failure(engine),
        abandoned=storage.abandoned_notifications(engine, operators=operators_seen(viewer)),
    )


def _recorded_settings(store: Store) -> dict[str, Any]:
    found = load_notification_settings(store)
    if found is None:
        raise NotReadyError("the ingest has recorded no routing yet")
    return found


def routing_in_force(store: Store, viewer: Viewer) -> dict[str, Any]:
    """The ingest's notification settings (no secrets: they are not recorded) with each
    operator's routing set from the API in place of its routes there, as the viewer may
    see them."""
    found = _recorded_settings(store)
    with reading(store) as conn:
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
    routes = [r for r in routes if viewer.sees(str(r.get("operator")))]
    named = {name for r in routes for step in r.get("steps", []) for name in step}
    shown = {p for name in named for p in roles.get(name, [name])}
    return {
        **found,
        "routes": routes,
        "roles": {k: v for k, v in roles.items() if k in named},
        "people": {k: v for k, v in people.items() if k in shown},
        "set_from_the_api": {k: v for k, v in changed.items() if viewer.sees(k)},
    }


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


def _reason(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
    return str(exc)


def set_routing(
    store: Store, viewer: Viewer, operator: str, routing: OperatorRouting, now: datetime
) -> dict[str, Any]:
    """Set who the operator's alerts reach, checked with every other operator's routing
    against the settings, and answer the routing in force."""
    if not viewer.sees(operator) or not any(v.operator == operator for v in store.vehicles()):
        raise NotFoundError(f"no operator {operator!r} among yours")
    found = _recorded_settings(store)
    with unit_of_work(store) as conn:
        stored = {
            op: OperatorRouting.model_validate_json(s.body)
            for op, s in storage.operator_routings(conn).items()
        }
        try:
            merged_routing(_settings_to_check(found), {**stored, operator: routing})
        except ValueError as exc:
            raise RefusedError(_reason(exc)) from None
        storage.save_operator_routing(conn, operator, routing.model_dump_json(), viewer.name, now)
        audit.record(
            conn,
            viewer,
            "routing.set",
            f"operator {operator}",
            now,
            people=sorted(routing.people),
            routes=len(routing.routes),
        )
    return routing_in_force(store, viewer)
