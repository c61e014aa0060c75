"""The time-series outbox: line-protocol points queued in the transaction of what they
describe, sent to the time-series server, then forgotten."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ingest.tables.intake import timeseries_outbox

# The engine's execution option holding the translator from records to points; a store
# opened without one queues nothing.
POINTS_OPTION = "medicobus_points"
Translator = Callable[[object], list[str]]


def points_wanted(conn: Connection) -> bool:
    """Whether records emitted on ``conn`` become points: for storage code that must read
    more to make its records (an alarm as it stood before), and skips it otherwise."""
    return conn.get_execution_options().get(POINTS_OPTION) is not None


def emit(conn: Connection, records: Iterable[object]) -> None:
    """Hand what was just stored in ``conn``'s transaction to the time-series outbox:
    its points are queued there, by the store's translator, if it has one."""
    translate: Translator | None = conn.get_execution_options().get(POINTS_OPTION)
    if translate is not None:
        queue_points(conn, (line for record in records for line in translate(record)))


def queue_points(conn: Connection, lines: Iterable[str]) -> None:
    """Queue line-protocol points for the time-series server in ``conn``'s transaction:
    they leave only if what they describe is committed."""
    rows = [{"line": line} for line in lines]
    if rows:
        conn.execute(timeseries_outbox.insert(), rows)


def pending_points(engine: Engine, limit: int) -> list[tuple[int, str]]:
    """The oldest ``limit`` points waiting, with their ids."""
    c = timeseries_outbox.c
    query = sa.select(c.id, c.line).order_by(c.id).limit(limit)
    with engine.connect() as conn:
        return [(int(r[0]), str(r[1])) for r in conn.execute(query)]


def forget_points(engine: Engine, up_to_id: int) -> None:
    """Forget the points the server took, up to ``up_to_id``."""
    with engine.begin() as conn:
        conn.execute(timeseries_outbox.delete().where(timeseries_outbox.c.id <= up_to_id))


def count_pending_points(engine: Engine) -> int:
    query = sa.select(sa.func.count()).select_from(timeseries_outbox)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())
