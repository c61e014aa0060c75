"""Reads the stored batches' keys: which seqs of a bus's stream the store holds."""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa

from ingest.confirmation import StoredSeqs
from ingest.store import Store
from ingest.tables.intake import batches
from protocol.models import Stream

# Enough for a bus's unconfirmed batches; more are found by the next look-up.
LOOKUP_ROWS: Final = 5000


def stored_seqs(store: Store) -> StoredSeqs:
    """A look-up of the seqs of ``(vehicle, stream)`` from ``first`` on, ascending."""
    c = batches.c

    def lookup(vehicle: str, stream: Stream, first: int) -> list[int]:
        query = (
            sa.select(c.seq)
            .where(c.vehicle == vehicle, c.stream == stream, c.seq >= first)
            .order_by(c.seq)
            .limit(LOOKUP_ROWS)
        )
        with store.engine.connect() as conn:
            return [int(r[0]) for r in conn.execute(query)]

    return lookup
