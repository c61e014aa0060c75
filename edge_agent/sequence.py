"""Batch sequence numbers per stream, kept on disk so they survive restarts."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class SequenceStore:
    """``next(stream)`` returns 0, 1, 2, ... per stream, never repeating across restarts.

    A number taken but never published leaves a gap, which the cloud tolerates; a
    repeated number would make the cloud drop a new batch as a duplicate.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS sequence (stream TEXT PRIMARY KEY, next INTEGER NOT NULL)"
        )
        self._lock = threading.Lock()

    def next(self, stream: str) -> int:
        with self._lock:
            row = self._db.execute(
                "INSERT INTO sequence (stream, next) VALUES (?, 1) "
                "ON CONFLICT(stream) DO UPDATE SET next = next + 1 RETURNING next - 1",
                (stream,),
            ).fetchone()
            return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
