"""Every stream of the wire contract in one place: its name, its batch and sample models
(pydantic, as the agent builds them, and msgspec structs, as the ingest reads them), the
order in which a full outbox gives streams up, whether the cloud keeps its samples raw,
and the part of a vehicle's live state it moves.

The agent's batching and eviction, the ingest's intake and live state read it;
``tests/protocol/test_streams.py`` fails if one of them misses a stream. Adding a stream:
its models in :mod:`protocol.models` and :mod:`protocol.wire`, a line here, its table in
``ingest/tables/intake``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from protocol import wire
from protocol.models import (
    EnergyBatch,
    EnergySample,
    EventBatch,
    EventSample,
    FridgeBatch,
    FridgeSample,
    GpsBatch,
    GpsSample,
    ObdBatch,
    ObdSample,
    StatusBatch,
    StatusSample,
    Stream,
)

LiveState = Literal["link", "position", "battery", "fridge"]


@dataclass(frozen=True)
class StreamSpec:
    name: Stream
    batch: type[GpsBatch | EnergyBatch | FridgeBatch | StatusBatch | EventBatch | ObdBatch]
    sample: type[GpsSample | EnergySample | FridgeSample | StatusSample | EventSample | ObdSample]
    # The same, as the ingest decodes them (:mod:`protocol.wire`).
    struct_batch: type[wire.Batch]
    struct_sample: type[wire.Sample]
    # 1 is given up first when the outbox is full; the highest is kept to the very last.
    eviction_rank: int
    # Whether the ingest keeps every sample in a table of its own (a bus's status reports
    # only move its live state).
    kept_raw: bool
    live_state: LiveState | None


STREAMS: Final[tuple[StreamSpec, ...]] = (
    StreamSpec("gps", GpsBatch, GpsSample, wire.GpsBatch, wire.GpsSample, 3, True, "position"),
    StreamSpec(
        "energy",
        EnergyBatch,
        EnergySample,
        wire.EnergyBatch,
        wire.EnergySample,
        4,
        True,
        "battery",
    ),
    StreamSpec(
        "fridge", FridgeBatch, FridgeSample, wire.FridgeBatch, wire.FridgeSample, 6, True, "fridge"
    ),
    StreamSpec(
        "status", StatusBatch, StatusSample, wire.StatusBatch, wire.StatusSample, 1, False, "link"
    ),
    StreamSpec("event", EventBatch, EventSample, wire.EventBatch, wire.EventSample, 5, True, None),
    # The engine's fuel (OBD-II): the footprint falls back on its model without it.
    StreamSpec("obd", ObdBatch, ObdSample, wire.ObdBatch, wire.ObdSample, 2, True, None),
)

BY_NAME: Final[dict[Stream, StreamSpec]] = {s.name: s for s in STREAMS}
