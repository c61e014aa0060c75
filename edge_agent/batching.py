"""Samples of one stream into protocol batches: how many fit, and the batch itself.

Pure: stored sample texts in, a validated :data:`~protocol.models.Batch` out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

from pydantic import TypeAdapter, ValidationError

from protocol.codec import MAX_PAYLOAD_BYTES
from protocol.models import (
    Batch,
    EnergySample,
    EventSample,
    FridgeSample,
    GpsSample,
    ObdSample,
    StatusSample,
    Stream,
)
from protocol.streams import STREAMS

Sample = GpsSample | EnergySample | FridgeSample | StatusSample | EventSample | ObdSample

# Room for the batch's own fields around the samples: {"v":1,"vehicle":...,"samples":[...]}.
ENVELOPE_BYTES: Final = 256
MAX_BATCH_BYTES: Final = MAX_PAYLOAD_BYTES - ENVELOPE_BYTES

_STREAM_OF: Final[dict[type[Any], Stream]] = {s.sample: s.name for s in STREAMS}
_BATCH_TYPES: Final[dict[Stream, type[Any]]] = {s.name: s.batch for s in STREAMS}
_SAMPLE_TYPES: Final[dict[Stream, type[Sample]]] = {s.name: s.sample for s in STREAMS}
_SAMPLE_LISTS: Final[dict[Stream, TypeAdapter[list[Any]]]] = {
    s.name: TypeAdapter(cast(Any, list)[s.sample]) for s in STREAMS
}


def stream_of(sample: Sample) -> Stream:
    return _STREAM_OF[type(sample)]


def sample_json(sample: Sample) -> bytes:
    """A sample as stored in the outbox: the very JSON it has inside a batch."""
    return sample.model_dump_json(exclude_none=True).encode()


def samples_that_fit(
    sizes: Sequence[int], max_samples: int, max_bytes: int = MAX_BATCH_BYTES
) -> int:
    """How many of the leading samples (sizes in bytes) one batch can carry.

    At least one, so a stream never stalls; a single sample over ``max_bytes`` is the
    caller's to set aside (:func:`build_batch` would refuse it at encoding).
    """
    total = 0
    for count, size in enumerate(sizes[:max_samples]):
        total += size + (1 if count else 0)  # a comma between samples
        if total > max_bytes:
            return max(count, 1)
    return max(min(len(sizes), max_samples), 1) if sizes else 0


@dataclass(frozen=True)
class BuiltBatch:
    batch: Batch
    rejected: int  # stored samples that no longer validate, left out of the batch


def parse_samples(stream: Stream, texts: Sequence[bytes]) -> list[Sample]:
    """Stored sample texts (:func:`sample_json`) back to samples; texts that no longer
    validate (a store written by another version) are left out."""
    try:
        samples: list[Sample] = _SAMPLE_LISTS[stream].validate_json(b"[" + b",".join(texts) + b"]")
    except ValidationError:
        sample_type = _SAMPLE_TYPES[stream]
        samples = []
        for text in texts:
            try:
                samples.append(sample_type.model_validate_json(text))
            except ValidationError:
                continue
    return samples


def build_batch(vehicle: str, stream: Stream, seq: int, texts: Sequence[bytes]) -> BuiltBatch:
    """One batch from stored sample texts, leaving out those that no longer validate.

    Raises ``ValueError`` when none of the texts is a valid sample of ``stream``.
    """
    samples = parse_samples(stream, texts)
    if not samples:
        raise ValueError(f"no valid {stream} sample among {len(texts)} stored")
    batch: Batch = _BATCH_TYPES[stream](vehicle=vehicle, seq=seq, samples=samples)
    return BuiltBatch(batch, len(texts) - len(samples))
