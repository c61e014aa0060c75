"""Groups samples of one stream into protocol batches of bounded size."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Final, TypeVar

from protocol.models import (
    Batch,
    EnergyBatch,
    EnergySample,
    EventBatch,
    EventSample,
    FridgeBatch,
    FridgeSample,
    GpsBatch,
    GpsSample,
    StatusBatch,
    StatusSample,
)

# Keeps the largest batch (a catch-up after an outage) well under the payload limit.
MAX_SAMPLES_PER_MESSAGE: Final = 500

T = TypeVar("T")

Sample = GpsSample | EnergySample | FridgeSample | StatusSample | EventSample


def make_batches(
    vehicle: str, samples: Sequence[Sample], next_seq: Callable[[str], int]
) -> Iterator[Batch]:
    """Yield one batch per chunk of same-stream samples, each with a fresh ``seq``."""
    for start in range(0, len(samples), MAX_SAMPLES_PER_MESSAGE):
        chunk = list(samples[start : start + MAX_SAMPLES_PER_MESSAGE])
        first = chunk[0]
        if isinstance(first, GpsSample):
            yield GpsBatch(vehicle=vehicle, seq=next_seq("gps"), samples=_only(chunk, GpsSample))
        elif isinstance(first, EnergySample):
            yield EnergyBatch(
                vehicle=vehicle, seq=next_seq("energy"), samples=_only(chunk, EnergySample)
            )
        elif isinstance(first, FridgeSample):
            yield FridgeBatch(
                vehicle=vehicle, seq=next_seq("fridge"), samples=_only(chunk, FridgeSample)
            )
        elif isinstance(first, StatusSample):
            yield StatusBatch(
                vehicle=vehicle, seq=next_seq("status"), samples=_only(chunk, StatusSample)
            )
        else:
            yield EventBatch(
                vehicle=vehicle, seq=next_seq("event"), samples=_only(chunk, EventSample)
            )


def _only(chunk: list[Sample], kind: type[T]) -> list[T]:
    out: list[T] = [s for s in chunk if isinstance(s, kind)]
    if len(out) != len(chunk):
        raise TypeError(f"a batch mixes streams: expected only {kind.__name__}")
    return out
