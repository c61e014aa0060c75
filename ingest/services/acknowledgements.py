"""Acknowledging an alert or a fridge alarm: one command for both, in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol, TypeVar

from sqlalchemy.engine import Connection

from ingest.acknowledgement import AckOutcome
from ingest.services import audit
from ingest.services.common import ConflictError, NotFoundError, Viewer, unit_of_work
from ingest.store import Store


class Acknowledgeable(Protocol):
    @property
    def operator(self) -> str: ...

    @property
    def ack_by(self) -> str | None: ...

    @property
    def ack_at(self) -> datetime | None: ...


Row = TypeVar("Row", bound=Acknowledgeable)


def acknowledge(
    store: Store,
    viewer: Viewer,
    *,
    what: str,
    action: str,
    row_id: int,
    read: Callable[[Connection, int], Row | None],
    record: Callable[[Connection, int, str, datetime, str | None], AckOutcome],
    comment: str | None,
    now: datetime,
) -> Row:
    """Record who acknowledged ``what`` ``row_id``, when and why, with its audit entry;
    the first acknowledgement stands (ConflictError, naming it, for a second one). A row
    of an operator the viewer does not see is not found."""
    name = f"{what} {row_id}"
    with unit_of_work(store) as conn:
        found = read(conn, row_id)
        if found is None or not viewer.sees(found.operator):
            raise NotFoundError(f"no {name} among yours")
        outcome = record(conn, row_id, viewer.name, now, comment)
        if outcome == "acknowledged":
            audit.record(conn, viewer, action, name, now, comment=comment)
        after = read(conn, row_id)
    if after is None:
        raise NotFoundError(f"no {name} among yours")
    if outcome == "already":
        when = after.ack_at.isoformat() if after.ack_at else "?"
        raise ConflictError(f"{name} was already acknowledged by {after.ack_by} at {when}")
    return after
