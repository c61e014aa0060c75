"""Live push: Server-Sent Events of positions, vehicles, alerts and visit changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import StreamingResponse

from api.auth import Principal, Role, require
from api.live import LiveBroadcaster

router = APIRouter(prefix="/api/v1", tags=["fleet"])
Viewer = Annotated[Principal, Depends(require(Role.FLEET_MANAGER, Role.COORDINATOR, Role.ENGINEER))]
MAX_EVENT_ID_DIGITS = 30


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
    comment line ``: ping`` keeps the connection open."""
    resume = _last_event_id(last_event_id)
    broadcaster: LiveBroadcaster = request.app.state.live
    subscription = await broadcaster.subscribe(caller, resume)

    async def events() -> AsyncIterator[str]:
        try:
            async for text in subscription.stream(broadcaster.ping_s):
                yield text
        finally:
            broadcaster.unsubscribe(subscription)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
