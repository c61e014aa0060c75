"""Alerts and their webhook notifications in the system of record (SQLAlchemy Core).

At most one alert per (vehicle, kind, subject) is active at a time, which the database
itself enforces (a partial unique index), so two ingests sharing the work cannot raise
the same alert twice. A notification is written in the same transaction as the alert
change it announces, so none is lost if the process stops before sending it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ingest.acknowledgement import AckOutcome, acknowledge
from ingest.alerts.records import AlertChange, AlertEvent, AlertRecord
from ingest.alerts.rules import (
    SEVERITY,
    ActiveAlert,
    AlertKind,
    AlertPlan,
    Condition,
    Detail,
    VehicleHealth,
)
from ingest.geo import haversine_m
from ingest.sql_dialects import insert_or_skip, upsert
from ingest.store import emit
from ingest.tables.alerts import (
    alert_notifications,
    alert_routing,
    alerts,
    operator_routing,
)
from ingest.tables.intake import (
    energy_samples,
    fridge_samples,
    gps_samples,
    stops,
    vehicle_state,
    vehicles,
)


def _record(row: Any) -> AlertRecord:
    return AlertRecord(
        id=int(row.id),
        vehicle=row.vehicle,
        operator=row.operator,
        kind=row.kind,
        subject=row.subject,
        severity=row.severity,
        message=row.message,
        detail=json.loads(row.detail),
        since=row.since,
        ended=row.ended,
        raised_at=row.raised_at,
        cleared_at=row.cleared_at,
        ack_by=row.ack_by,
        ack_at=row.ack_at,
        ack_comment=row.ack_comment,
    )


def _with_operator() -> Any:
    return sa.select(alerts, vehicles.c.operator).select_from(
        alerts.join(vehicles, vehicles.c.id == alerts.c.vehicle)
    )


# --- what the rules read -----------------------------------------------------------------


def _latest(conn: Connection, table: sa.Table, vehicle: str, *where: Any) -> datetime | None:
    c = table.c
    query = sa.select(c.t).where(c.vehicle == vehicle, *where).order_by(c.t.desc()).limit(1)
    found: datetime | None = conn.execute(query).scalar()
    return found


def _earliest(conn: Connection, table: sa.Table, vehicle: str) -> datetime | None:
    c = table.c
    query = sa.select(c.t).where(c.vehicle == vehicle).order_by(c.t).limit(1)
    found: datetime | None = conn.execute(query).scalar()
    return found


def low_charge_since(conn: Connection, vehicle: str, limit_pct: float) -> datetime | None:
    """When the run of state-of-charge readings below ``limit_pct`` that goes on now
    began: the first reading after the last one at or above it (None: no reading below).
    From the stored readings, so the same whatever order they were stored in."""
    e = energy_samples.c
    known = sa.and_(e.vehicle == vehicle, e.soc_pct.is_not(None))
    last_above = conn.execute(
        sa.select(sa.func.max(e.t)).where(known, e.soc_pct >= limit_pct)
    ).scalar()
    query = sa.select(sa.func.min(e.t)).where(known, e.soc_pct < limit_pct)
    if last_above is not None:
        query = query.where(e.t > last_above)
    found: datetime | None = conn.execute(query).scalar()
    return found


def link_health(conn: Connection, vehicle: str) -> VehicleHealth:
    """Only what the offline rule reads: last contact, link state and the newest sample
    time the live state holds."""
    vs = vehicle_state.c
    state = conn.execute(
        sa.select(
            vs.last_seen,
            vs.gps_t,
            vs.energy_t,
            vs.fridge_t,
            vs.status_t,
            vs.online,
            vs.status_seen_at,
        ).where(vs.vehicle == vehicle)
    ).first()
    times = [] if state is None else [t for t in state[1:5] if t is not None]
    return VehicleHealth(
        vehicle=vehicle,
        last_seen=state.last_seen if state is not None else None,
        online=state.online if state is not None else None,
        status_t=state.status_t if state is not None else None,
        status_seen_at=state.status_seen_at if state is not None else None,
        last_valid_fix=None,
        latest_sample=max(times) if times else None,
        first_sample=None,
    )


def vehicle_health(conn: Connection, vehicle: str) -> VehicleHealth:
    vs = vehicle_state.c
    state = conn.execute(
        sa.select(vs.last_seen, vs.status_t, vs.online, vs.status_seen_at).where(
            vs.vehicle == vehicle
        )
    ).first()
    g = gps_samples.c
    valid_fix = _latest(conn, gps_samples, vehicle, g.fix_mode > 1, g.quality > 0)
    sample_tables = (gps_samples, energy_samples, fridge_samples)
    latest = [t for table in sample_tables if (t := _latest(conn, table, vehicle)) is not None]
    status_t = state.status_t if state is not None else None
    if status_t is not None:
        latest.append(status_t)
    first: datetime | None = None
    if valid_fix is None:
        firsts = [t for table in sample_tables if (t := _earliest(conn, table, vehicle))]
        first = min(firsts) if firsts else None
    e = energy_samples.c
    soc = conn.execute(
        sa.select(e.t, e.soc_pct)
        .where(e.vehicle == vehicle, e.soc_pct.is_not(None))
        .order_by(e.t.desc())
        .limit(1)
    ).first()
    return VehicleHealth(
        vehicle=vehicle,
        last_seen=state.last_seen if state is not None else None,
        online=state.online if state is not None else None,
        status_t=status_t,
        status_seen_at=state.status_seen_at if state is not None else None,
        last_valid_fix=valid_fix,
        latest_sample=max(latest) if latest else None,
        first_sample=first,
        soc_t=soc[0] if soc is not None else None,
        soc_pct=soc[1] if soc is not None else None,
    )


def active_alerts(conn: Connection, vehicle: str) -> list[ActiveAlert]:
    c = alerts.c
    query = sa.select(c.id, c.vehicle, c.kind, c.subject).where(
        c.vehicle == vehicle, c.cleared_at.is_(None)
    )
    return [ActiveAlert(int(r.id), r.vehicle, r.kind, r.subject) for r in conn.execute(query)]


def known_keys(
    conn: Connection, vehicle: str, kinds: Iterable[AlertKind]
) -> set[tuple[str, AlertKind, str]]:
    c = alerts.c
    query = sa.select(c.vehicle, c.kind, c.subject).where(
        c.vehicle == vehicle, c.kind.in_(list(kinds))
    )
    return {(r.vehicle, r.kind, r.subject) for r in conn.execute(query)}


# --- writing -------------------------------------------------------------------------------


def _detail_text(detail: Detail) -> str:
    return json.dumps(dict(detail), sort_keys=True)


def _notification(alert: AlertRecord, event: AlertEvent, now: datetime) -> dict[str, Any]:
    payload = {"event": f"alert.{event}", "alert": alert.as_json()}
    return {
        "alert_id": alert.id,
        "event": event,
        "payload": json.dumps(payload, sort_keys=True),
        "created_at": now,
        "attempts": 0,
        "next_attempt_at": None,
    }


def _load(conn: Connection, alert_id: int) -> AlertRecord:
    row = conn.execute(_with_operator().where(alerts.c.id == alert_id)).one()
    return _record(row)


def apply_plan(
    conn: Connection, plan: AlertPlan, now: datetime, *, notify: bool
) -> list[tuple[AlertEvent, AlertRecord]]:
    """Write the plan; returns what changed (an alert another process raised or cleared
    first is not among them). Its notifications (``notify``) are written in the same
    transaction, and the changes handed to the time-series outbox."""
    changes: list[tuple[AlertEvent, AlertRecord]] = []
    c = alerts.c
    for cond in plan.raises:
        row = conn.execute(
            insert_or_skip(conn, alerts).values(**_raise_values(cond, now)).returning(c.id)
        ).first()
        if row is None:
            continue
        changes.append(("raised", _load(conn, int(row.id))))
        if cond.ended is not None:
            changes.append(("cleared", _load(conn, int(row.id))))
    for clear in plan.clears:
        done = conn.execute(
            alerts.update()
            .where(c.id == clear.alert_id, c.cleared_at.is_(None))
            .values(cleared_at=now, ended=clear.ended)
        )
        if done.rowcount == 1:
            changes.append(("cleared", _load(conn, clear.alert_id)))
    if notify and changes:
        conn.execute(alert_notifications.insert(), [_notification(a, e, now) for e, a in changes])
    emit(conn, [AlertChange(e, a) for e, a in changes])
    return changes


def _raise_values(cond: Condition, now: datetime) -> dict[str, Any]:
    return {
        "vehicle": cond.vehicle,
        "kind": cond.kind,
        "subject": cond.subject,
        "severity": SEVERITY[cond.kind],
        "message": cond.message,
        "detail": _detail_text(cond.detail),
        "since": cond.since,
        "ended": cond.ended,
        "raised_at": now,
        "cleared_at": now if cond.ended is not None else None,
    }


# --- reading for people ----------------------------------------------------------------


def list_alerts(
    engine: Engine,
    *,
    vehicle_ids: Iterable[str] | None = None,
    active: bool | None = None,
    kinds: Sequence[str] | None = None,
    limit: int = 200,
) -> list[AlertRecord]:
    """Newest first."""
    c = alerts.c
    query = _with_operator().order_by(c.raised_at.desc(), c.id.desc()).limit(limit)
    if vehicle_ids is not None:
        query = query.where(c.vehicle.in_(list(vehicle_ids)))
    if active is True:
        query = query.where(c.cleared_at.is_(None))
    elif active is False:
        query = query.where(c.cleared_at.is_not(None))
    if kinds:
        query = query.where(c.kind.in_(list(kinds)))
    with engine.connect() as conn:
        return [_record(r) for r in conn.execute(query)]


def get_alert(conn: Connection, alert_id: int) -> AlertRecord | None:
    row = conn.execute(_with_operator().where(alerts.c.id == alert_id)).first()
    return None if row is None else _record(row)


def acknowledge_alert(
    conn: Connection, alert_id: int, who: str, when: datetime, comment: str | None
) -> AckOutcome:
    return acknowledge(conn, alerts, alert_id, who=who, when=when, comment=comment)


# --- notifications ---------------------------------------------------------------------


@dataclass(frozen=True)
class Notification:
    id: int
    alert_id: int
    event: str
    payload: str
    attempts: int
    next_attempt_at: datetime | None
    channel: str = "webhook"
    recipient: str = ""
    dedup_key: str | None = None

    @property
    def idempotency_key(self) -> str:
        return self.dedup_key or f"notification-{self.id}"


def open_notifications(
    engine: Engine, limit: int = 500, channels: Iterable[str] | None = None
) -> list[Notification]:
    """Not yet delivered nor given up, oldest first."""
    c = alert_notifications.c
    query = (
        sa.select(alert_notifications)
        .where(c.delivered_at.is_(None), c.abandoned_at.is_(None))
        .order_by(c.id)
        .limit(limit)
    )
    if channels is not None:
        query = query.where(c.channel.in_(list(channels)))
    with engine.connect() as conn:
        return [
            Notification(
                int(r.id),
                int(r.alert_id),
                r.event,
                r.payload,
                r.attempts,
                r.next_attempt_at,
                r.channel,
                r.recipient,
                r.dedup_key,
            )
            for r in conn.execute(query)
        ]


@dataclass(frozen=True)
class Message:
    """A message for one person, to be queued with the alert's other notifications."""

    alert_id: int
    event: str
    channel: str
    recipient: str
    dedup_key: str
    subject: str
    text: str
    # (file name, PDF bytes): a report sent as a document.
    attachments: tuple[tuple[str, bytes], ...] = ()


# The alert_id of a message about no alert (a scheduled report).
NO_ALERT = 0


def enqueue(conn: Connection, messages: Sequence[Message], now: datetime) -> int:
    """Queue ``messages``; one already queued under its key is skipped. Returns how many
    were new."""
    added = 0
    for m in messages:
        body: dict[str, Any] = {"to": m.recipient, "subject": m.subject, "text": m.text}
        if m.attachments:
            body["attachments"] = [{"filename": f, "hex": b.hex()} for f, b in m.attachments]
        payload = json.dumps(body)
        row = {
            "alert_id": m.alert_id,
            "event": m.event,
            "payload": payload,
            "created_at": now,
            "attempts": 0,
            "next_attempt_at": None,
            "channel": m.channel,
            "recipient": m.recipient,
            "dedup_key": m.dedup_key,
        }
        # rowcount of an INSERT … ON CONFLICT is not reliable on every driver.
        stmt = insert_or_skip(conn, alert_notifications).values(**row)
        if conn.execute(stmt.returning(alert_notifications.c.id)).first() is not None:
            added += 1
    return added


def lease(engine: Engine, n: Notification, until: datetime) -> bool:
    """Claim ``n`` for one attempt; False if another process claimed it first."""
    c = alert_notifications.c
    with engine.begin() as conn:
        done = conn.execute(
            alert_notifications.update()
            .where(
                c.id == n.id,
                c.delivered_at.is_(None),
                c.abandoned_at.is_(None),
                c.next_attempt_at.is_(None)
                if n.next_attempt_at is None
                else c.next_attempt_at == n.next_attempt_at,
            )
            .values(next_attempt_at=until)
        )
    return done.rowcount == 1


def delivered(engine: Engine, notification_id: int, when: datetime, attempts: int) -> None:
    c = alert_notifications.c
    with engine.begin() as conn:
        conn.execute(
            alert_notifications.update()
            .where(c.id == notification_id)
            .values(delivered_at=when, attempts=attempts, last_error=None)
        )


def failed(
    engine: Engine,
    notification_id: int,
    *,
    attempts: int,
    error: str,
    retry_at: datetime | None,
    when: datetime,
) -> None:
    """An attempt failed; retry at ``retry_at``, or give up when it is None."""
    c = alert_notifications.c
    values: dict[str, Any] = {"attempts": attempts, "last_error": error[:2000]}
    if retry_at is None:
        values["abandoned_at"] = when
    else:
        values["next_attempt_at"] = retry_at
    with engine.begin() as conn:
        conn.execute(alert_notifications.update().where(c.id == notification_id).values(**values))


def notification_counts(engine: Engine) -> dict[str, int]:
    """Notifications by state: delivered, pending (to be tried again), abandoned."""
    c = alert_notifications.c
    state = sa.case(
        (c.delivered_at.is_not(None), "delivered"),
        (c.abandoned_at.is_not(None), "abandoned"),
        else_="pending",
    )
    query = sa.select(state.label("state"), sa.func.count()).group_by(state)
    with engine.connect() as conn:
        return {r[0]: int(r[1]) for r in conn.execute(query)}


def notification_counts_by_channel(engine: Engine) -> dict[str, dict[str, int]]:
    """Per channel: delivered, pending, abandoned."""
    c = alert_notifications.c
    state = sa.case(
        (c.delivered_at.is_not(None), "delivered"),
        (c.abandoned_at.is_not(None), "abandoned"),
        else_="pending",
    )
    query = sa.select(c.channel, state.label("state"), sa.func.count()).group_by(c.channel, state)
    out: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for channel, st, n in conn.execute(query):
            out.setdefault(channel, {"delivered": 0, "pending": 0, "abandoned": 0})[st] = int(n)
    return out


@dataclass(frozen=True)
class AbandonedNotification:
    id: int
    alert_id: int
    event: str
    channel: str
    recipient: str
    attempts: int
    abandoned_at: datetime
    reason: str | None


def abandoned_notifications(
    engine: Engine, limit: int = 50, operators: Iterable[str] | None = None
) -> list[AbandonedNotification]:
    """The latest notifications given up on, with why, newest first; only those about
    alerts of ``operators`` when given (a scheduled report is about no alert)."""
    c = alert_notifications.c
    query = (
        sa.select(alert_notifications)
        .where(c.abandoned_at.is_not(None))
        .order_by(c.abandoned_at.desc(), c.id.desc())
        .limit(limit)
    )
    if operators is not None:
        mine = (
            sa.select(alerts.c.id)
            .join(vehicles, vehicles.c.id == alerts.c.vehicle)
            .where(vehicles.c.operator.in_(list(operators)))
        )
        query = query.where(c.alert_id.in_(mine))
    with engine.connect() as conn:
        return [
            AbandonedNotification(
                int(r.id),
                int(r.alert_id),
                r.event,
                r.channel,
                r.recipient,
                int(r.attempts),
                r.abandoned_at,
                r.last_error,
            )
            for r in conn.execute(query)
        ]


def failed_attempts(engine: Engine) -> int:
    """Attempts that did not deliver, over every notification."""
    c = alert_notifications.c
    delivered = sa.case((c.delivered_at.is_not(None), 1), else_=0)
    query = sa.select(sa.func.coalesce(sa.func.sum(c.attempts - delivered), 0))
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def last_failure(engine: Engine) -> str | None:
    c = alert_notifications.c
    query = sa.select(c.last_error).where(c.last_error.is_not(None)).order_by(c.id.desc()).limit(1)
    with engine.connect() as conn:
        found: str | None = conn.execute(query).scalar()
    return found


# --- routing to people -----------------------------------------------------------------


@dataclass(frozen=True)
class RoutingState:
    alert: AlertRecord
    route: int | None
    step: int
    step_at: datetime
    reminded: bool
    route_json: str | None = None


def unrouted_alerts(conn: Connection, raised_since: datetime) -> list[AlertRecord]:
    """Alerts raised since ``raised_since`` that routing has not looked at yet."""
    r = alert_routing.c
    query = (
        _with_operator()
        .where(
            alerts.c.raised_at >= raised_since,
            ~sa.exists().where(r.alert_id == alerts.c.id),
        )
        .order_by(alerts.c.id)
    )
    return [_record(row) for row in conn.execute(query)]


def start_routing(
    conn: Connection,
    alert_id: int,
    route: int | None,
    now: datetime,
    route_json: str | None = None,
) -> bool:
    """Mark the alert as routed (at step 0) by ``route`` (kept as it is now, in
    ``route_json``); False if another process did first."""
    row = {
        "alert_id": alert_id,
        "route": route,
        "route_json": route_json,
        "step": 0,
        "step_at": now,
        "reminded": False,
    }
    stmt = insert_or_skip(conn, alert_routing).values(**row).returning(alert_routing.c.alert_id)
    return conn.execute(stmt).first() is not None


def awaiting_acknowledgement(conn: Connection) -> list[RoutingState]:
    """Routed alerts still active and unacknowledged: candidates for a reminder or the
    next step."""
    r = alert_routing.c
    query = (
        sa.select(alerts, vehicles.c.operator, r.route, r.route_json, r.step, r.step_at, r.reminded)
        .select_from(
            alerts.join(vehicles, vehicles.c.id == alerts.c.vehicle).join(
                alert_routing, r.alert_id == alerts.c.id
            )
        )
        .where(r.route.is_not(None), alerts.c.cleared_at.is_(None), alerts.c.ack_at.is_(None))
        .order_by(alerts.c.id)
    )
    return [
        RoutingState(
            _record(row),
            row.route,
            int(row.step),
            row.step_at,
            bool(row.reminded),
            row.route_json,
        )
        for row in conn.execute(query)
    ]


def advance_routing(
    conn: Connection, state: RoutingState, *, step: int, reminded: bool, now: datetime
) -> bool:
    """Move the alert to ``step`` (or mark its reminder); False if another process moved
    it first."""
    r = alert_routing.c
    values: dict[str, Any] = {"reminded": reminded}
    if step != state.step:
        values.update(step=step, step_at=now)
    done = conn.execute(
        alert_routing.update()
        .where(
            r.alert_id == state.alert.id,
            r.step == state.step,
            r.reminded == state.reminded,
        )
        .values(**values)
    )
    return bool(done.rowcount == 1)


def last_place(conn: Connection, vehicle: str, near_m: float = 20_000) -> str | None:
    """Where the bus was last seen: the stop it is at, the nearest stop within
    ``near_m``, or its coordinates."""
    g = gps_samples.c
    fix = conn.execute(
        sa.select(g.lat, g.lon)
        .where(g.vehicle == vehicle, g.fix_mode > 1, g.quality > 0)
        .order_by(g.t.desc())
        .limit(1)
    ).first()
    if fix is None:
        return None
    best: tuple[float, str, float] | None = None
    for stop in conn.execute(sa.select(stops.c.name, stops.c.lat, stops.c.lon, stops.c.radius_m)):
        d = haversine_m(fix.lat, fix.lon, stop.lat, stop.lon)
        if best is None or d < best[0]:
            best = (d, stop.name, stop.radius_m)
    coords = f"{fix.lat:.5f}, {fix.lon:.5f}"
    if best is not None and best[0] <= best[2]:
        return f"{best[1]} ({coords})"
    if best is not None and best[0] <= near_m:
        km = f"{best[0] / 1000:.1f}".replace(".", ",")
        return f"à {km} km de {best[1]} ({coords})"
    return coords


def queued_keys(conn: Connection, keys: Iterable[str]) -> set[str]:
    """Which of ``keys`` are already in the queue (whatever their state)."""
    c = alert_notifications.c
    wanted = list(keys)
    if not wanted:
        return set()
    return {r[0] for r in conn.execute(sa.select(c.dedup_key).where(c.dedup_key.in_(wanted)))}


@dataclass(frozen=True)
class StoredRouting:
    operator: str
    body: str
    changed_by: str
    changed_at: datetime


def operator_routings(conn: Connection) -> dict[str, StoredRouting]:
    """Every operator's routing set from the API (JSON of ``OperatorRouting``)."""
    rows = conn.execute(sa.select(operator_routing))
    return {r.operator: StoredRouting(r.operator, r.body, r.changed_by, r.changed_at) for r in rows}


def save_operator_routing(
    conn: Connection, operator: str, body: str, who: str, at: datetime
) -> None:
    upsert(
        conn,
        operator_routing,
        ("operator",),
        {"operator": operator, "body": body, "changed_by": who, "changed_at": at},
    )
