from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from edge_agent.sequence import SEQUENCE_SCHEMA, first_seq, take_seq


def open_db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(SEQUENCE_SCHEMA)
    return db


def test_numbers_count_per_stream_and_survive_a_restart(tmp_path: Path) -> None:
    db = open_db(tmp_path / "outbox.sqlite")
    db.execute("BEGIN")
    assert [take_seq(db, "gps", first=0) for _ in range(3)] == [0, 1, 2]
    assert take_seq(db, "fridge", first=0) == 0
    db.execute("COMMIT")
    db.close()
    reopened = open_db(tmp_path / "outbox.sqlite")
    assert take_seq(reopened, "gps") == 3
    assert take_seq(reopened, "fridge") == 1
    reopened.close()


def test_a_number_taken_in_a_rolled_back_transaction_is_taken_again(tmp_path: Path) -> None:
    db = open_db(tmp_path / "outbox.sqlite")
    assert take_seq(db, "gps", first=0) == 0
    db.execute("BEGIN")
    assert take_seq(db, "gps") == 1
    db.execute("ROLLBACK")
    assert take_seq(db, "gps") == 1
    db.close()


def test_a_lost_outbox_starts_above_every_number_it_handed_out(tmp_path: Path) -> None:
    before = first_seq()
    db = open_db(tmp_path / "outbox.sqlite")
    numbers = []
    for _ in range(5):  # a batch every few milliseconds: faster than any bus sends
        numbers.append(take_seq(db, "gps"))
        time.sleep(0.005)
    db.close()
    assert numbers[0] >= before
    assert numbers == list(range(numbers[0], numbers[0] + 5))
    (tmp_path / "outbox.sqlite").unlink()
    replacement = open_db(tmp_path / "outbox.sqlite")
    assert take_seq(replacement, "gps") > numbers[-1]
    replacement.close()
