"""Batch sequence numbers per stream, kept in the outbox's database.

``take_seq`` runs inside the caller's transaction, so a batch row and the number it
carries are committed together: a batch re-sent after a crash keeps its number, and a
number is never handed out twice. A number taken in a transaction that is rolled back
is taken again by the next batch; one committed but never published leaves a gap,
which the cloud tolerates. A repeated number would make the cloud drop a new batch as
a duplicate.

A stream's first number is the wall-clock time in milliseconds when it is first
numbered, and numbers then grow by one per batch — far slower than a thousand a
second. So if the outbox file is lost (an SD card replaced), the new one starts above
every number the old one handed out, and the cloud keeps taking the bus's batches.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Final

SEQUENCE_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS sequence (stream TEXT PRIMARY KEY, next INTEGER NOT NULL)"
)


def first_seq() -> int:
    return time.time_ns() // 1_000_000


def take_seq(db: sqlite3.Connection, stream: str, first: int | None = None) -> int:
    """The next number of ``stream``; call inside an open transaction.

    ``first`` is the number a new stream starts at (by default, :func:`first_seq`).
    """
    start = first_seq() if first is None else first
    row = db.execute(
        "INSERT INTO sequence (stream, next) VALUES (?, ? + 1) "
        "ON CONFLICT(stream) DO UPDATE SET next = next + 1 RETURNING next - 1",
        (stream, start),
    ).fetchone()
    return int(row[0])
