"""The audit log: every change people make through the API (visits, alerts, fridge
alarms, alert routing), with who, their role, when and from which address, written in the
change's own transaction so that one never stands without the other."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ingest.services.common import CONTROL_CHARACTERS, Viewer, reading
from ingest.store import Store
from ingest.tables.audit import audit_log


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    who: str
    role: str
    address: str
    action: str
    target: str
    detail: dict[str, Any]


def _printable(text: str, size: int) -> str:
    """Text as the log keeps it: control characters (a NUL from someone trying e-mails,
    which PostgreSQL cannot store) shown as U+FFFD, cut to the column's size."""
    return CONTROL_CHARACTERS.sub("\ufffd", text)[:size]


def record(
    conn: Connection,
    viewer: Viewer,
    action: str,
    target: str,
    at: datetime,
    **detail: Any,
) -> None:
    """Add an entry in ``conn``'s transaction."""
    conn.execute(
        audit_log.insert().values(
            at=at,
            who=_printable(viewer.name, 100),
            role=_printable(str(getattr(viewer, "role", "")), 20),
            address=_printable(str(getattr(viewer, "address", "")), 64),
            action=action,
            target=_printable(target, 200),
            detail=json.dumps(
                {k: v for k, v in detail.items() if v is not None}, default=str, sort_keys=True
            ),
        )
    )


def entries(
    store: Store,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    who: str | None = None,
    action: str | None = None,
    limit: int = 200,
) -> list[AuditEntry]:
    """Newest first, in ``[start, end)``."""
    c = audit_log.c
    query = sa.select(audit_log).order_by(c.at.desc(), c.id.desc()).limit(limit)
    if start is not None:
        query = query.where(c.at >= start)
    if end is not None:
        query = query.where(c.at < end)
    if who is not None:
        query = query.where(c.who == who)
    if action is not None:
        query = query.where(c.action == action)
    with reading(store) as conn:
        return [
            AuditEntry(
                int(r.id), r.at, r.who, r.role, r.address, r.action, r.target, json.loads(r.detail)
            )
            for r in conn.execute(query)
        ]
