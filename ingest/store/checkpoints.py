"""SQLite's write-ahead log checkpointed in a thread of its own.

By default, SQLite copies the log back into the database inside the commit that takes
the log past 1000 pages: every few groups, the ingest's writer stops to copy and to
wait for the disk. The SQLite documentation suggests, for applications that write a
lot, running checkpoints from another thread instead (https://sqlite.org/wal.html,
"Automatic Checkpoint"). The ingest does that: this thread runs a passive checkpoint
twice a second, which never blocks a writer, on a core of its own while the writer goes
on (the copy and the disk wait release the interpreter lock).

A passive checkpoint cannot restart the log while a writer keeps adding to it: the
ingest's connections keep SQLite's own checkpoint, at ``BACKSTOP_PAGES`` instead of
1000. When the log reaches that, the writer's commit checkpoints what little this
thread has not copied yet, and the log starts again from its beginning: it stays below
about 64 MB whatever the pace. Written by hand: SQLAlchemy and the sqlite3 module have
no checkpointing of their own.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

EVERY_S: Final = 0.5
# Pages of 4 KiB: 64 MiB of log.
BACKSTOP_PAGES: Final = 16_384


class BackgroundCheckpoints:
    """Checkpoints the database at ``path`` every ``every_s`` until :meth:`stop`."""

    def __init__(self, path: Path, every_s: float = EVERY_S) -> None:
        self._path = path
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoints", daemon=True)
        self.rounds = 0

    def start(self) -> BackgroundCheckpoints:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Stop, after a last checkpoint of what was committed."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, check_same_thread=False)
        try:
            while not self._stop.wait(self._every_s):
                self._checkpoint(conn)
            self._checkpoint(conn)
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        # A failure (a disk error, say) is logged and tried again at the next round:
        # the log only grows meanwhile, up to the writer's own checkpoint.
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.rounds += 1
        except sqlite3.Error:
            log.exception("checkpoint of %s failed; trying again", self._path)
