"""A person acknowledging an alert or an alarm: who, when, and what they said."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

AckOutcome = Literal["acknowledged", "already", "missing"]


def acknowledge(
    conn: Connection,
    table: sa.Table,
    row_id: int,
    *,
    who: str,
    when: datetime,
    comment: str | None,
) -> AckOutcome:
    """Record the acknowledgement of row ``row_id`` of ``table`` (which has ``ack_by``,
    ``ack_at``, ``ack_comment``) in the caller's transaction; the first one stands, a
    second one changes nothing."""
    c = table.c
    done = conn.execute(
        table.update()
        .where(c.id == row_id, c.ack_at.is_(None))
        .values(ack_by=who, ack_at=when, ack_comment=comment)
    )
    if done.rowcount == 1:
        return "acknowledged"
    exists = conn.execute(sa.select(c.id).where(c.id == row_id)).first()
    return "already" if exists is not None else "missing"
