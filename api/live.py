"""Live push to the staff web app (Server-Sent Events), one database read for everyone.

A single :class:`LiveBroadcaster` per API process reads the live snapshot once per
interval, whatever the number of connected clients, and cuts each operator's view from
it: positions, vehicles and active alerts are sent when their content changed, and a
``visits`` event says which visits of which day changed (a detection, an ETA, a
coordinator's change), for clients to read that day again. A change made through this
API wakes the broadcaster at once; what the ingest (another process) changes is found by
the next read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import count
from typing import Any, Final
from zoneinfo import ZoneInfo

from pydantic import BaseModel, TypeAdapter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import Principal
from api.views import AlertOut, VehicleOut, active_alerts_out, positions_out, vehicles_out
from ingest.queries.live import LiveSnapshot, read_live_snapshot
from ingest.store import Store
from protocol.clock import Clock, SystemClock

log = logging.getLogger(__name__)

SNAPSHOT_KINDS: Final = ("positions", "vehicles", "alerts")
# Events a client may fall behind by before it is dropped (it reconnects and resumes).
CLIENT_QUEUE: Final = 1000
_VEHICLES = TypeAdapter(list[VehicleOut])
_ALERTS = TypeAdapter(list[AlertOut])


def _json(value: Any) -> str:
    # As FastAPI renders a response: the same JSON text, on one line.
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def sse(event_id: int, event: str, data: str) -> str:
    return f"id: {event_id}\nevent: {event}\ndata: {data}\n\n"


@dataclass(frozen=True)
class VisitsEvent:
    id: int
    operator: str
    text: str


@dataclass(eq=False)
class Subscription:
    caller: Principal
    queue: asyncio.Queue[str | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=CLIENT_QUEUE)
    )

    @property
    def scope(self) -> str | None:
        """The operator whose view this client gets; None: every operator (admins)."""
        return None if self.caller.sees_all else self.caller.operator

    def offer(self, text: str) -> bool:
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            return False
        return True

    async def stream(self, ping_s: float) -> AsyncIterator[str]:
        while True:
            try:
                text = await asyncio.wait_for(self.queue.get(), timeout=ping_s)
            except TimeoutError:
                yield ": ping\n\n"
                continue
            if text is None:
                return
            yield text


class LiveBroadcaster:
    """Reads the live snapshot every ``interval_s`` while clients are connected, and fans
    it out per operator. ``reads`` counts the snapshots read."""

    def __init__(
        self,
        store: Store,
        *,
        interval_s: float = 1.0,
        ping_s: float = 15.0,
        replay_events: int = 1000,
        linger_s: float = 60.0,
        clock: Clock | None = None,
        zone: Callable[[], ZoneInfo] | None = None,
    ) -> None:
        self._store = store
        # Reading goes on this long after the last client left, so that one coming back
        # (a page reloaded, a tablet out of coverage) is sent what it missed.
        self.linger_s = linger_s
        self._last_client = time.monotonic()
        self.interval_s = interval_s
        self.ping_s = ping_s
        self._clock = clock or SystemClock()
        self._zone = zone or (lambda: ZoneInfo("Europe/Paris"))
        # Ids grow across restarts too (milliseconds since the epoch to start with), so a
        # client resuming after one is not taken for one from the future.
        self._ids = count(time.time_ns() // 1_000_000)
        self._replay: deque[VisitsEvent] = deque(maxlen=replay_events)
        self._subscribers: set[Subscription] = set()
        self._sent: dict[str | None, dict[str, str]] = {}
        self._latest: LiveSnapshot | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._first: asyncio.Event | None = None
        self.reads = 0

    @property
    def clients(self) -> int:
        return len(self._subscribers)

    # --- clients ---------------------------------------------------------------------

    async def subscribe(self, caller: Principal, last_event_id: int | None) -> Subscription:
        """A new client: the visits events after ``last_event_id`` still held, then a
        snapshot of positions, vehicles and alerts."""
        self._start()
        assert self._first is not None
        sub = Subscription(caller)
        self._subscribers.add(sub)
        if self._latest is None:
            self.wake()
            await self._first.wait()
        if last_event_id is not None:
            for e in self._replay:
                if e.id > last_event_id and caller.sees(e.operator):
                    sub.offer(e.text)
        snapshot = self._latest
        assert snapshot is not None
        payloads = self._payloads(snapshot, caller)
        self._sent.setdefault(sub.scope, payloads)
        for kind in SNAPSHOT_KINDS:
            sub.offer(sse(next(self._ids), kind, payloads[kind]))
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)
        self._last_client = time.monotonic()
        if not any(s.scope == sub.scope for s in self._subscribers):
            self._sent.pop(sub.scope, None)

    def wake(self) -> None:
        """Read now rather than at the end of the interval: something changed."""
        if self._wake is not None:
            self._wake.set()

    # --- the one reader --------------------------------------------------------------

    def _start(self) -> None:
        if self._task is not None and not self._task.done():
            return
        self._wake = asyncio.Event()
        self._first = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="live-broadcaster")

    async def _run(self) -> None:
        assert self._wake is not None and self._first is not None
        cursor: int | None = None
        while True:
            if not self._subscribers and time.monotonic() - self._last_client > self.linger_s:
                # Nobody to tell: forget what was read, and read again for the next client.
                self._latest, cursor = None, None
                self._first.clear()
                self._wake.clear()
            else:
                # What woke this read is in it; a change during the read wakes the next.
                self._wake.clear()
                try:
                    snapshot = await asyncio.to_thread(self._read, cursor)
                    self.reads += 1
                    cursor = snapshot.change_cursor
                    self._publish(snapshot)
                except Exception:
                    # A database that is briefly away must not end the live push.
                    log.exception("live snapshot failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval_s)

    def _read(self, cursor: int | None) -> LiveSnapshot:
        return read_live_snapshot(self._store.engine, self._watched_days(), cursor)

    def _watched_days(self) -> list[date]:
        today = self._clock.now().astimezone(self._zone()).date()
        # Yesterday too: its last departures and late data still change it after midnight.
        return [today - timedelta(days=1), today] if today > date.min else [today]

    def _publish(self, snapshot: LiveSnapshot) -> None:
        assert self._first is not None
        previous, self._latest = self._latest, snapshot
        self._first.set()
        if previous is not None:
            self._publish_visits(previous, snapshot)
        for scope, sent in list(self._sent.items()):
            members = [s for s in self._subscribers if s.scope == scope]
            if not members:
                continue
            payloads = self._payloads(snapshot, members[0].caller)
            for kind in SNAPSHOT_KINDS:
                if payloads[kind] != sent.get(kind):
                    sent[kind] = payloads[kind]
                    self._send(members, sse(next(self._ids), kind, payloads[kind]))

    def _publish_visits(self, before: LiveSnapshot, after: LiveSnapshot) -> None:
        operator_of = {v.id: v.operator for v in after.vehicles}
        changed: dict[tuple[str, date], set[str]] = {}
        quiet: set[tuple[str, date]] = set()
        for visit_id in before.visit_marks.keys() | after.visit_marks.keys():
            old, new = before.visit_marks.get(visit_id), after.visit_marks.get(visit_id)
            if old != new:
                mark = new or old
                assert mark is not None
                changed.setdefault((mark.vehicle, mark.day), set()).add(visit_id)
        for c in after.changed_visits:
            changed.setdefault((c.vehicle, c.day), set()).add(c.visit_id)
        for key in before.unscheduled_marks.keys() | after.unscheduled_marks.keys():
            if before.unscheduled_marks.get(key) != after.unscheduled_marks.get(key):
                quiet.add(key)
        by_day: dict[tuple[str, date], tuple[set[str], set[str]]] = {}
        for (vehicle, day), ids in changed.items():
            key = (operator_of.get(vehicle, ""), day)
            vehicles, visit_ids = by_day.setdefault(key, (set(), set()))
            vehicles.add(vehicle)
            visit_ids.update(ids)
        for vehicle, day in quiet:
            by_day.setdefault((operator_of.get(vehicle, ""), day), (set(), set()))[0].add(vehicle)
        for (operator, day), (vehicles, visit_ids) in sorted(by_day.items()):
            event_id = next(self._ids)
            data = {
                "date": day.isoformat(),
                "vehicles": sorted(vehicles),
                "visit_ids": sorted(visit_ids),
            }
            event = VisitsEvent(event_id, operator, sse(event_id, "visits", _json(data)))
            self._replay.append(event)
            self._send([s for s in self._subscribers if s.caller.sees(operator)], event.text)

    def _send(self, members: list[Subscription], text: str) -> None:
        for sub in members:
            if not sub.offer(text):
                # Too far behind: end its stream; it reconnects and resumes from its last id.
                log.warning("live client of %s too slow; disconnected", sub.caller.name)
                self._subscribers.discard(sub)
                with contextlib.suppress(asyncio.QueueEmpty):
                    sub.queue.get_nowait()
                sub.queue.put_nowait(None)

    @staticmethod
    def _payloads(snapshot: LiveSnapshot, caller: Principal) -> dict[str, str]:
        return {
            "positions": _model_json(positions_out(snapshot.positions, caller)),
            "vehicles": _json(
                _VEHICLES.dump_python(vehicles_out(snapshot.vehicles, caller), mode="json")
            ),
            "alerts": _json(
                _ALERTS.dump_python(active_alerts_out(snapshot.active_alerts, caller), mode="json")
            ),
        }


def _model_json(model: BaseModel) -> str:
    return _json(model.model_dump(mode="json"))


class WakeOnChange:
    """ASGI middleware: after a successful change (any method but GET/HEAD/OPTIONS answered
    below 400), wake the live broadcaster so every client hears of it at once."""

    def __init__(self, app: ASGIApp, broadcaster: LiveBroadcaster) -> None:
        self.app = app
        self.broadcaster = broadcaster

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        await self.app(scope, receive, watch)
        if status < 400:
            self.broadcaster.wake()
