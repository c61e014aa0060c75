"""Batch sequence numbers per stream, kept in the outbox's database.

``take_seq`` runs inside the caller's transaction, so a batch row and the number it
carries are committed together: a batch re-sent after a crash keeps its number, and a
number is never handed out twice. A number taken in a transaction that is rolled back
is taken again by the next batch; one committed but never published leaves a gap,
which the cloud tolerates. A repeated number would make the cloud drop a new batch as
a duplicate.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Final

SEQUENCE_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS sequence (stream TEXT PRIMARY KEY, next INTEGER NOT NULL)"
)


def take_seq(db: sqlite3.Connection, stream: str) -> int:
    """The next number of ``stream`` (0, 1, 2, ...); call inside an open transaction."""
    row = db.execute(
        "INSERT INTO sequence (stream, next) VALUES (?, 1) "
        "ON CONFLICT(stream) DO UPDATE SET next = next + 1 RETURNING next - 1",
        (stream,),
    ).fetchone()
    return int(row[0])


def adopt_counters(db: sqlite3.Connection, legacy: Path) -> None:
    """Carry the counters of an older ``sequence.sqlite`` over, never moving one back.

    Agents before the outbox kept their counters in a file of their own; restarting
    from 0 would make the cloud take every new batch for a duplicate.
    """
    if not legacy.is_file():
        return
    old = sqlite3.connect(f"file:{legacy}?mode=ro", uri=True)
    try:
        rows = old.execute("SELECT stream, next FROM sequence").fetchall()
    except sqlite3.OperationalError:
        rows = []
    finally:
        old.close()
    db.executemany(
        "INSERT INTO sequence (stream, next) VALUES (?, ?) "
        "ON CONFLICT(stream) DO UPDATE SET next = max(next, excluded.next)",
        rows,
    )
