from __future__ import annotations

import sqlite3
from pathlib import Path

from edge_agent.sequence import SEQUENCE_SCHEMA, adopt_counters, take_seq


def open_db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(SEQUENCE_SCHEMA)
    return db


def test_numbers_count_per_stream_and_survive_a_restart(tmp_path: Path) -> None:
    db = open_db(tmp_path / "outbox.sqlite")
    db.execute("BEGIN")
    assert [take_seq(db, "gps") for _ in range(3)] == [0, 1, 2]
    assert take_seq(db, "fridge") == 0
    db.execute("COMMIT")
    db.close()
    reopened = open_db(tmp_path / "outbox.sqlite")
    assert take_seq(reopened, "gps") == 3
    assert take_seq(reopened, "fridge") == 1
    reopened.close()


def test_a_number_taken_in_a_rolled_back_transaction_is_taken_again(tmp_path: Path) -> None:
    db = open_db(tmp_path / "outbox.sqlite")
    assert take_seq(db, "gps") == 0
    db.execute("BEGIN")
    assert take_seq(db, "gps") == 1
    db.execute("ROLLBACK")
    assert take_seq(db, "gps") == 1
    db.close()


def test_counters_of_an_older_agent_are_carried_over_never_backwards(tmp_path: Path) -> None:
    legacy = sqlite3.connect(tmp_path / "sequence.sqlite")
    legacy.execute("CREATE TABLE sequence (stream TEXT PRIMARY KEY, next INTEGER NOT NULL)")
    legacy.executemany("INSERT INTO sequence VALUES (?, ?)", [("gps", 120), ("status", 4)])
    legacy.commit()
    legacy.close()
    db = open_db(tmp_path / "outbox.sqlite")
    for _ in range(10):
        take_seq(db, "status")
    adopt_counters(db, tmp_path / "sequence.sqlite")
    assert take_seq(db, "gps") == 120
    assert take_seq(db, "status") == 10
    adopt_counters(db, tmp_path / "missing.sqlite")
    assert take_seq(db, "gps") == 121
    db.close()
