"""SQLite's log checkpointed in the background (the ingest's store): the thread copies
the log while the writer goes on, the log stays bounded while a writer commits without
pause, and closing the store stops the thread after a last checkpoint."""

from __future__ import annotations

import os
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ingest.store import Store, create_engine
from ingest.store.checkpoints import BACKSTOP_PAGES, BackgroundCheckpoints
from protocol import wire

BLOB = os.urandom(64 * 1024)
MB = 1024 * 1024


def fill(path: Path, checkpoint_pages: int, total_mb: int, pause_s: float = 0.0) -> int:
    """Commit ``total_mb`` of rows, 1 MB per transaction, through an engine that
    checkpoints at ``checkpoint_pages``; return the largest log seen after a commit."""
    engine = create_engine(f"sqlite:///{path}", checkpoint_pages=checkpoint_pages)
    largest = 0
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS filler (x BLOB NOT NULL)")
        for _ in range(total_mb):
            with engine.begin() as conn:
                conn.exec_driver_sql("INSERT INTO filler VALUES (?)", [(BLOB,)] * 16)
            largest = max(largest, wal_bytes(path))
            time.sleep(pause_s)
    finally:
        engine.dispose()
    return largest


def wal_bytes(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_a_writer_that_never_pauses_keeps_the_log_below_the_backstop(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    checkpoints = BackgroundCheckpoints(path, every_s=0.01).start()
    try:
        # 256 pages of 4 KiB: the log starts again once past 1 MiB.
        assert fill(path, checkpoint_pages=256, total_mb=40) < 4 * MB
    finally:
        checkpoints.stop()
    # The control: without a backstop, the thread alone cannot restart the log.
    other = tmp_path / "other.sqlite"
    checkpoints = BackgroundCheckpoints(other, every_s=0.01).start()
    try:
        assert fill(other, checkpoint_pages=0, total_mb=20) > 20 * MB
    finally:
        checkpoints.stop()


def test_the_thread_copies_the_log_while_the_writer_goes_on(tmp_path: Path) -> None:
    """In WAL mode only checkpoints write the database file itself: it grows with what
    is committed only because the thread copies the log (the writer's own checkpoint,
    at 64 MiB, is not reached)."""
    quiet, copied = tmp_path / "quiet.sqlite", tmp_path / "copied.sqlite"
    checkpoints = BackgroundCheckpoints(copied, every_s=0.01)
    for path, thread in ((quiet, None), (copied, checkpoints)):
        engine = create_engine(f"sqlite:///{path}", checkpoint_pages=BACKSTOP_PAGES)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE filler (x BLOB NOT NULL)")
        if thread is not None:
            thread.start()
        for _ in range(8):
            with engine.begin() as conn:
                conn.exec_driver_sql("INSERT INTO filler VALUES (?)", [(BLOB,)] * 16)
        time.sleep(0.2)
        # Measured while the engine is open: closing the last connection checkpoints.
        size = path.stat().st_size
        if thread is None:
            assert size < MB
        else:
            assert size > 8 * MB
            assert checkpoints.rounds > 0
            checkpoints.stop()
            assert not checkpoints.running
        engine.dispose()
    with sqlite3.connect(copied) as conn:
        assert conn.execute("SELECT count(*) FROM filler").fetchone() == (8 * 16,)


def _fix(vehicle: str, seq: int) -> wire.GpsBatch:
    t = datetime(2026, 12, 4, 8, tzinfo=UTC) + timedelta(seconds=seq)
    return wire.GpsBatch(
        vehicle=vehicle,
        seq=seq,
        samples=[wire.GpsSample(t=t, lat=49.2, lon=1.7, fix_mode=3)],
    )


def test_the_ingests_store_checkpoints_in_the_background_and_stops_on_close(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ingest.sqlite"
    store = Store.open(f"sqlite:///{path}", background_checkpoints=True)
    checkpoints = store._checkpoints
    assert checkpoints is not None and checkpoints.running
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == BACKSTOP_PAGES
    received = datetime(2026, 12, 4, 9, tzinfo=UTC)
    assert store.save_batches([(_fix("vexin-01", n), received) for n in range(50)]) == [True] * 50
    store.close()
    assert not checkpoints.running
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM gps_samples").fetchone() == (50,)


def test_other_stores_keep_sqlites_own_checkpoints(tmp_path: Path) -> None:
    """The API's store and a memory database have no thread: their commits checkpoint
    as SQLite does by default."""
    store = Store.open(f"sqlite:///{tmp_path / 'api.sqlite'}")
    assert store._checkpoints is None
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    store.close()
    memory = Store.open("sqlite://", background_checkpoints=True)
    assert memory._checkpoints is None
    memory.close()
