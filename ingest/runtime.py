"""Process-wide settings for a long-running ingest."""

from __future__ import annotations

import gc
from typing import Final

# Collections of the youngest generation come after this many net allocations. The
# ingest allocates a dozen short-lived objects per sample, freed by reference counting;
# at Python's default (700) the collector ran dozens of times a second and rescanned
# every object of the groups being written, a quarter of the writer's time.
YOUNG_GENERATION_THRESHOLD: Final = 50_000


def settle_heap() -> None:
    """Call once set-up is done: what was built so far (fleet, timetables, schemas) lives
    as long as the process, so the collector stops scanning it (``gc.freeze``), and the
    youngest generation is collected less often."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, older, oldest)
