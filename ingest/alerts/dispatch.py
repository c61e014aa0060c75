"""Turns alerts into messages for people: routes each new alert once, reminds once and
escalates to the next step while nobody acknowledges, in a thread of its own.

Every message is queued (:func:`storage.enqueue`) in the same transaction that moves the
alert's routing state, under a key naming the alert, the step and the recipient: however
often this runs, and in however many processes, each person gets one message per step
and one reminder. The delivery worker sends them.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ingest.alerts import storage
from ingest.alerts.notify_settings import (
    NotificationSettings,
    OperatorRouting,
    Route,
    merged_routing,
)
from ingest.alerts.records import AlertRecord
from ingest.alerts.routing import (
    AlertFacts,
    ack_link,
    choose_route,
    compose,
    step_recipients,
    windows_at,
)
from ingest.store import Store
from ingest.tables.intake import vehicles
from protocol.clock import Clock

log = logging.getLogger(__name__)


def _key(alert_id: int, step: int, what: str, channel: str, address: str) -> str:
    digest = hashlib.sha256(address.encode()).hexdigest()[:16]
    return f"alert-{alert_id}-step-{step}-{what}-{channel}-{digest}"


class AlertDispatcher:
    def __init__(
        self,
        store: Store,
        settings: NotificationSettings,
        zone: ZoneInfo,
        clock: Clock,
        *,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._base = settings
        # What routing is in force: the settings with the operators' routings set from
        # the API, read again at each round.
        self._settings = settings
        self._zone = zone
        self._clock = clock
        self._on_queued = on_queued
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.queued = 0

    def wake(self) -> None:
        self._wake.set()

    def dispatch(self) -> int:
        """Route new alerts, remind and escalate; returns how many messages were queued."""
        now = self._clock.now()
        self._settings = self._in_force()
        horizon = now - timedelta(minutes=self._settings.route_alerts_raised_within_min)
        queued = 0
        with self._lock:
            with self._store.engine.connect() as conn:
                fresh = storage.unrouted_alerts(conn, horizon)
            for alert in fresh:
                queued += self._route_new(alert, now)
            with self._store.engine.connect() as conn:
                waiting = storage.awaiting_acknowledgement(conn)
            for state in waiting:
                queued += self._follow_up(state, now)
        if queued:
            self.queued += queued
            if self._on_queued is not None:
                self._on_queued()
        return queued

    def _in_force(self) -> NotificationSettings:
        with self._store.engine.connect() as conn:
            stored = storage.operator_routings(conn)
        if not stored:
            return self._base
        try:
            overrides = {
                op: OperatorRouting.model_validate_json(s.body) for op, s in stored.items()
            }
            return merged_routing(self._base, overrides)
        except ValueError as exc:
            # Checked when set; the settings file may have changed since.
            log.error("the operators' routing does not fit the settings (%s): using theirs", exc)
            return self._base

    def _route_new(self, alert: AlertRecord, now: datetime) -> int:
        windows = windows_at(alert.raised_at, self._zone, self._settings)
        route = choose_route(self._settings.routes, alert.operator, alert.kind, windows)
        index = None if route is None else self._settings.routes.index(route)
        with self._store.engine.begin() as conn:
            kept = None if route is None else route.model_dump_json()
            if not storage.start_routing(conn, alert.id, index, now, kept):
                return 0
            if route is None:
                return 0
            added = self._queue(conn, alert=alert, route=route, step=0, what="first", now=now)
        log.info("alert %d (%s): %d message(s) queued", alert.id, alert.kind, added)
        return added

    def _follow_up(self, state: storage.RoutingState, now: datetime) -> int:
        routes = self._settings.routes
        if state.route_json is not None:
            route = Route.model_validate_json(state.route_json)
        elif state.route is None or state.route >= len(routes):
            return 0
        else:
            route = routes[state.route]
        elapsed = now - state.step_at
        added = 0
        with self._store.engine.begin() as conn:
            if elapsed >= timedelta(minutes=route.escalate_after_min) and state.step + 1 < len(
                route.steps
            ):
                step = state.step + 1
                if storage.advance_routing(conn, state, step=step, reminded=False, now=now):
                    added = self._queue(
                        conn, alert=state.alert, route=route, step=step, what="escalation", now=now
                    )
                    log.warning(
                        "alert %d unacknowledged: escalated to step %d", state.alert.id, step
                    )
            elif (
                not state.reminded
                and route.remind_after_min is not None
                and elapsed >= timedelta(minutes=route.remind_after_min)
                and storage.advance_routing(conn, state, step=state.step, reminded=True, now=now)
            ):
                added = self._queue(
                    conn, alert=state.alert, route=route, step=state.step, what="reminder", now=now
                )
        return added

    def _queue(
        self,
        conn: Connection,
        *,
        alert: AlertRecord,
        route: Route,
        step: int,
        what: str,
        now: datetime,
    ) -> int:
        label = conn.execute(
            sa.select(vehicles.c.label).where(vehicles.c.id == alert.vehicle)
        ).scalar()
        facts = AlertFacts(
            id=alert.id,
            kind=alert.kind,
            vehicle=alert.vehicle,
            label=label or alert.vehicle,
            since=alert.since,
            detail=alert.detail,
            place=storage.last_place(conn, alert.vehicle),
        )
        base = self._settings.public_base_url
        subject, text = compose(
            facts,
            self._zone,
            ack_link(None if base is None else str(base), alert.id),
            reminder=what == "reminder",
            escalated=what == "escalation",
        )
        messages = [
            storage.Message(
                alert_id=alert.id,
                event=what,
                channel=r.channel,
                recipient=r.address,
                dedup_key=_key(alert.id, step, what, r.channel, r.address),
                subject=subject,
                text=text,
            )
            for r in step_recipients(self._settings, route, step)
        ]
        return storage.enqueue(conn, messages, now)

    # --- the thread ----------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="alert-dispatch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.dispatch()
            except Exception:
                log.exception("alert dispatch failed; again in %.1f s", self._settings.tick_s)
            self._wake.wait(self._settings.tick_s)
            self._wake.clear()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
