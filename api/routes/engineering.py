"""What engineers need to debug buses and firmware."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from api.auth import Principal, Role, require
from api.deps import get_store
from api.scope import visible_vehicle_ids
from ingest.store import Store
from protocol.topics import STREAMS, topic_for

router = APIRouter(prefix="/api/v1", tags=["engineering"])


class RejectionOut(BaseModel):
    received_at: datetime
    topic: str
    reason: str
    detail: str
    payload_bytes: int
    payload_head: str


class RejectionsOut(BaseModel):
    counts: dict[str, int]
    recent: list[RejectionOut]


@router.get("/rejections")
def list_rejections(
    store: Annotated[Store, Depends(get_store)],
    caller: Annotated[Principal, Depends(require(Role.ENGINEER))],
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> RejectionsOut:
    """Messages the ingest refused, counted by reason, with the most recent ones: those
    sent on the topics of the caller's operator's vehicles (admins: every message,
    unknown senders' included)."""
    topics = (
        None
        if caller.sees_all
        else [topic_for(v, s) for v in visible_vehicle_ids(store, caller) for s in STREAMS]
    )
    return RejectionsOut(
        counts=store.rejection_counts(topics),
        recent=[RejectionOut(**r.__dict__) for r in store.recent_rejections(limit, topics)],
    )
