"""The audit log, for admins: who changed what, when and from where."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from api.auth import Principal, require
from api.deps import get_store
from api.scope import Day, TypedText, checked_period, itinerary_zone, utc_bounds
from ingest.services import audit
from ingest.store import Store

router = APIRouter(prefix="/api/v1", tags=["audit"])
Admin = Annotated[Principal, Depends(require())]
StoreDep = Annotated[Store, Depends(get_store)]


class AuditOut(BaseModel):
    id: int
    at: datetime
    who: str
    role: str
    address: str
    action: str = Field(
        description="visit.confirm, visit.correct, visit.cancel, visit.notice, "
        "visit.attendance, alert.ack, fridge_alarm.ack, routing.set, token.create, "
        "token.revoke, account.add, account.disable, account.reset, signin, "
        "signin.refused, signout"
    )
    target: str
    detail: dict[str, Any]


@router.get("/audit")
def audit_log(
    *,
    store: StoreDep,
    caller: Admin,
    start: Annotated[Day | None, Query(alias="from", description="first local day")] = None,
    end: Annotated[Day | None, Query(alias="to", description="last local day")] = None,
    who: Annotated[TypedText | None, Query(max_length=100)] = None,
    action: Annotated[TypedText | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AuditOut]:
    """Every change made through the API, newest first (admins)."""
    zone = itinerary_zone(store)
    if start is not None and end is not None:
        checked_period(start, end, max_days=3660)
    lo = utc_bounds(start, start, zone)[0] if start is not None else None
    hi = utc_bounds(end, end, zone)[1] if end is not None else None
    found = audit.entries(store, start=lo, end=hi, who=who, action=action, limit=limit)
    return [AuditOut(**vars(e)) for e in found]
