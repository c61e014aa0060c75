"""Retention: raw samples, de-duplication keys and rejected messages past their time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine

from ingest.store.intake import SAMPLE_TABLES
from ingest.tables.intake import batches, rejections


def prune(engine: Engine, before: datetime) -> dict[str, int]:
    """Delete raw samples older than ``before``, and the de-duplication keys of
    batches received before it; return how many rows went, per table.

    Keys may go with the samples as long as ``before`` is older than the ingest's
    ``max_age``: a redelivered batch that old is refused as stale before it could be
    taken for new.
    """
    removed: dict[str, int] = {}
    with engine.begin() as conn:
        # Every table of raw samples, from the intake's registry: OBD readings, added
        # later, were once left out.
        for table in SAMPLE_TABLES.values():
            result = conn.execute(table.delete().where(table.c.t < before))
            removed[table.name] = result.rowcount
        result = conn.execute(batches.delete().where(batches.c.received_at < before))
        removed[batches.name] = result.rowcount
        result = conn.execute(rejections.delete().where(rejections.c.received_at < before))
        removed[rejections.name] = result.rowcount
    return removed
