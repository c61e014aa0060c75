"""What the outbox gives up when it is full: the policy of its size bound.

The bound counts the bytes of what the outbox stores (sample and batch texts). When
a commit would leave more than that, space is freed from the stream that matters
least, oldest first, and the next stream is touched only once that one is empty:

1. ``status``: the agent's own health reports; the broker keeps the latest anyway.
2. ``gps``: the densest stream (a fix per second); a gap in a track is a gap in a map.
3. ``energy``: battery and solar readings, for the footprint.
4. ``event``: rare and small.
5. ``fridge``: the cold-chain record of vaccines and insulin, kept to the very last,
   and never given up while a single GPS fix could be given up instead.

Pure: byte counts in, byte counts out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from protocol.models import Stream
from protocol.streams import STREAMS

EVICTION_ORDER: Final[tuple[Stream, ...]] = tuple(
    s.name for s in sorted(STREAMS, key=lambda s: s.eviction_rank)
)


def eviction_plan(usage: Mapping[Stream, int], max_bytes: int) -> dict[Stream, int]:
    """Bytes to free from each stream (oldest first) so the total fits in ``max_bytes``.

    Streams that need not give anything up are left out of the result.
    """
    if max_bytes < 0:
        raise ValueError(f"max_bytes must not be negative, got {max_bytes}")
    excess = sum(usage.values()) - max_bytes
    plan: dict[Stream, int] = {}
    for stream in EVICTION_ORDER:
        if excess <= 0:
            break
        take = min(usage.get(stream, 0), excess)
        if take > 0:
            plan[stream] = take
            excess -= take
    return plan
