"""Live push: Server-Sent Events of positions, vehicles, alerts and visit changes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import StreamingResponse

from api.auth import Authenticator, Principal, Role, require
from api.live import LiveBroadcaster

router = APIRouter(prefix="/api/v1", tags=["fleet"])
Viewer = Annotated[Principal, Depends(require(Role.FLEET_MANAGER, Role.COORDINATOR, Role.ENGINEER))]
MAX_EVENT_ID_DIGITS = 30
# How often an open stream asks again whether its caller may still read: a session ended
# or an account disabled, a token revoked, stop the stream within this many seconds.
RECHECK_S = 5.0


def _last_event_id(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > MAX_EVENT_ID_DIGITS:
        raise HTTPException(
            status_code=422,
            detail=f"Last-Event-ID must be the integer id of an event received, not {value[:40]!r}",
        )
    return int(text)


@router.get(
    "/live",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "an event stream"}},
)
async def live(
    request: Request,
    caller: Viewer,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Server-Sent Events for the caller's operator. On connect: ``positions``,
    ``vehicles`` and ``alerts`` (the JSON of ``GET /positions``, ``/vehicles`` and
    ``/alerts?active=true``); then each again when it changes, and ``visits``
    (``{"date", "vehicles", "visit_ids"}``: read that day's visits again) when a visit
    changes. With ``Last-Event-ID``, the ``visits`` events missed are sent first. A
    comment line ``: ping`` keeps the connection open. The stream ends within a few
    seconds of the caller's session ending (or token being revoked)."""
    resume = _last_event_id(last_event_id)
    broadcaster: LiveBroadcaster = request.app.state.live
    authenticator: Authenticator = request.app.state.authenticator
    subscription = await broadcaster.subscribe(caller, resume)

    async def events() -> AsyncIterator[str]:
        checked = time.monotonic()
        try:
            async for text in subscription.stream(min(broadcaster.ping_s, RECHECK_S)):
                if time.monotonic() - checked >= RECHECK_S:
                    checked = time.monotonic()
                    if not await asyncio.to_thread(authenticator.still_allowed, request):
                        return
                yield text
        finally:
            broadcaster.unsubscribe(subscription)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
