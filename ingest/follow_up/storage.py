"""Months of consultations imported from before the system (SQLAlchemy Core)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ingest.follow_up.consultations import ImportedMonth
from ingest.sql_dialects import upsert
from ingest.tables.punctuality import imported_consultations


def imported_months(
    conn: Connection, vehicles: Collection[str], first: date, last: date
) -> list[ImportedMonth]:
    """The imported months of ``vehicles`` from ``first`` to ``last`` (first days)."""
    c = imported_consultations.c
    query = (
        sa.select(imported_consultations)
        .where(c.vehicle.in_(list(vehicles)), c.month >= first, c.month <= last)
        .order_by(c.vehicle, c.month, c.profile)
    )
    return [
        ImportedMonth(r.vehicle, r.month, r.profile, int(r.consultations))
        for r in conn.execute(query)
    ]


def save_imported(
    conn: Connection, months: Sequence[ImportedMonth], source: str, now: datetime
) -> None:
    """Record imported months, each (vehicle, month, profile) replacing an earlier import
    of it: importing the same file twice changes nothing."""
    for m in months:
        upsert(
            conn,
            imported_consultations,
            ("vehicle", "month", "profile"),
            {
                "vehicle": m.vehicle,
                "month": m.month,
                "profile": m.profile,
                "consultations": m.consultations,
                "imported_at": now,
                "source": source,
            },
        )
