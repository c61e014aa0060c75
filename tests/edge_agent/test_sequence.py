from __future__ import annotations

from pathlib import Path

from edge_agent.sequence import SequenceStore


def test_sequence_numbers_survive_a_restart(tmp_path: Path) -> None:
    store = SequenceStore(tmp_path / "seq.sqlite")
    assert [store.next("gps") for _ in range(3)] == [0, 1, 2]
    assert store.next("fridge") == 0
    store.close()
    reopened = SequenceStore(tmp_path / "seq.sqlite")
    assert reopened.next("gps") == 3
    assert reopened.next("fridge") == 1
    reopened.close()
