"""Concurrent start-ups migrate a new database once, without tripping over each other."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ingest.store import Store


def test_processes_starting_together_on_a_new_sqlite_file_both_migrate_it(
    tmp_path: Path,
) -> None:
    # The ingest and the API are often started at the same moment on a new database.
    for attempt in range(3):
        url = f"sqlite:///{tmp_path / f'together-{attempt}.sqlite'}"
        code = f"from ingest.store import Store; Store.open({url!r}).close()"
        procs = [
            subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
            for _ in range(3)
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
        store = Store.open(url)
        try:
            assert store.vehicle_ids() == set()
        finally:
            store.close()
