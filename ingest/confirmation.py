"""What the ingest confirms to each bus: per stream, the highest seq up to which every
batch is handled, so the bus may delete its copies.

A batch is *handled* once the transaction holding its outcome has committed: stored,
dropped as a copy of a stored one, or refused and quarantined — a refused batch would be
refused again, so a bus re-sending it would only do so for ever. The one exception is a
bus the fleet file does not know (``unknown_vehicle``): nothing of it is stored, and it
keeps its batches until the file is updated and a re-send is taken.

"Up to" starts at the bus's own floor, which its status reports carry (``held_from``):
below it the bus holds nothing unconfirmed — what is below was confirmed, evicted from
its bounded outbox, or never published (a last will the broker did not need). Seqs that
the bus will never send thus leave no gap that stops the confirmation. Above the floor,
a seq counts only once handled here or found in the stored batches (after a restart of
the ingest, or when another ingest shares the load). Seqs handled beyond a gap are kept
until the gap closes: the bus re-sends what stays unconfirmed, or its floor rises past it.

Pure: messages' outcomes in, confirmations out; the caller reads stored batches and
publishes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from protocol.models import MAX_SEQ, StoredConfirmation, Stream
from protocol.topics import STREAMS, TopicError, parse_topic
from protocol.wire import Batch

# Rejections after which the same batch may be taken later: not handled.
RETRYABLE_REJECTIONS: Final = frozenset({"unknown_vehicle"})
# Seqs kept beyond a gap, per vehicle and stream; a bus sending numbers far apart (a
# firmware defect) must not grow the ingest without bound. Beyond, the highest go: the
# bus re-sends them later.
MAX_TRACKED: Final = 20_000

# Reads the stored seqs of (vehicle, stream) from a first seq on, ascending.
StoredSeqs = Callable[[str, Stream, int], list[int]]


@dataclass(frozen=True)
class Handled:
    """One message's contribution: its batch key, and the floors its status carried."""

    vehicle: str
    stream: Stream
    seq: int
    floors: dict[Stream, int]


def _seq(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SEQ:
        return value
    return None


# The top-level "seq" as the protocol's encoder writes it, before any nested value; read
# without parsing the whole payload, which would cost the writer as much again as
# validating it. Anything else is parsed in full.
_HEAD_SEQ = re.compile(rb'(?<!\\)"seq"\s*:\s*(\d{1,19})(?![\d.eE])')
_HEAD_BYTES: Final = 512


def _seq_in_head(payload: bytes) -> int | None:
    found = _HEAD_SEQ.search(payload, 0, _HEAD_BYTES)
    if found is None:
        return None
    before = payload[: found.start()]
    if before.count(b"{") != 1 or b"[" in before or not before.lstrip().startswith(b"{"):
        return None
    return _seq(int(found.group(1)))


def _document(payload: bytes) -> dict[str, object] | None:
    try:
        doc = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def _floors(doc: dict[str, object] | None) -> dict[Stream, int]:
    floors: dict[Stream, int] = {}
    samples = doc.get("samples") if doc is not None else None
    if not isinstance(samples, list):
        return floors
    for sample in samples:
        held = sample.get("held_from") if isinstance(sample, dict) else None
        if not isinstance(held, dict):
            continue
        for name, value in held.items():
            floor = _seq(value)
            if name in STREAMS and floor is not None:
                key: Stream = STREAMS[STREAMS.index(name)]
                floors[key] = max(floor, floors.get(key, floor))
    return floors


def handled_batch(topic: str, payload: bytes, status: str, reason: str = "") -> Handled | None:
    """The key of a message whose outcome (``stored``, ``duplicate`` or ``rejected`` with
    ``reason``) is committed, or None when it counts for nothing (no readable key, or a
    rejection that a later re-send may overcome). A status report's floors are taken
    unless the report was refused."""
    if status == "rejected" and reason in RETRYABLE_REJECTIONS:
        return None
    try:
        vehicle, stream = parse_topic(topic)
    except TopicError:
        return None
    doc: dict[str, object] | None = None
    seq = _seq_in_head(payload)
    if seq is None:
        doc = _document(payload)
        seq = _seq(doc.get("seq")) if doc is not None else None
        if seq is None:
            return None
    floors: dict[Stream, int] = {}
    if stream == "status" and status != "rejected":
        floors = _floors(doc if doc is not None else _document(payload))
    return Handled(vehicle, stream, seq, floors)


def handled_of(batch: Batch) -> Handled:
    """The key of a batch decoded, stored or dropped as a copy (what
    :func:`handled_batch` reads again from its payload)."""
    floors: dict[Stream, int] = {}
    if batch.stream == "status":
        for sample in batch.samples:
            for stream, floor in sample.held_from.items():
                floors[stream] = max(floor, floors.get(stream, floor))
    return Handled(batch.vehicle, batch.stream, batch.seq, floors)


@dataclass
class _Track:
    floor: int | None = None
    upto: int | None = None
    handled: set[int] = field(default_factory=set)
    looked_from: int | None = None  # where the stored batches were last read from


class StoredLedger:
    """Per vehicle and stream: the bus's floor, the seqs handled above the confirmed
    point, and that point. One thread uses a ledger."""

    def __init__(self) -> None:
        self._tracks: dict[tuple[str, Stream], _Track] = {}
        self._changed: set[str] = set()

    def _track(self, vehicle: str, stream: Stream) -> _Track:
        track = self._tracks.get((vehicle, stream))
        if track is None:  # not setdefault: that would build a track for every message
            track = self._tracks[vehicle, stream] = _Track()
        return track

    def note(self, handled: Handled) -> None:
        """A committed message: its seq is handled, its floors (if any) are known."""
        self.add_handled(handled.vehicle, handled.stream, [handled.seq])
        for stream, floor in handled.floors.items():
            track = self._track(handled.vehicle, stream)
            if track.floor is None or floor > track.floor:
                track.floor = floor
                self._advance(handled.vehicle, track)

    def add_handled(self, vehicle: str, stream: Stream, seqs: list[int]) -> None:
        """Seqs known handled: just committed, or found among the stored batches."""
        track = self._track(vehicle, stream)
        done = track.upto if track.upto is not None else -1
        track.handled.update(s for s in seqs if s > done)
        if len(track.handled) > MAX_TRACKED:
            track.handled = set(sorted(track.handled)[:MAX_TRACKED])
        self._advance(vehicle, track)

    def _advance(self, vehicle: str, track: _Track) -> None:
        if track.floor is None:
            return
        upto = track.floor - 1
        if track.upto is not None and track.upto > upto:
            upto = track.upto
        while upto + 1 in track.handled:
            upto += 1
        if upto != track.upto and upto >= 0:
            track.upto = upto
            track.handled = {s for s in track.handled if s > upto}
            self._changed.add(vehicle)

    def to_look_up(self) -> list[tuple[str, Stream, int]]:
        """(vehicle, stream, first seq) whose stored batches may move the confirmation:
        once when the bus's floor is first known (the ingest restarted, what it stored
        before is not in memory), then once per gap (a seq missing below handled ones)."""
        wanted = []
        for (vehicle, stream), track in self._tracks.items():
            if track.floor is None:
                continue
            first = track.floor if track.upto is None else max(track.floor, track.upto + 1)
            if first == track.looked_from:
                continue
            if track.looked_from is not None and not track.handled:
                continue  # nothing beyond the confirmed point: no gap to close
            track.looked_from = first
            wanted.append((vehicle, stream, first))
        return wanted

    def changed(self) -> set[str]:
        """Vehicles whose confirmation moved since the last call."""
        changed, self._changed = self._changed, set()
        return changed

    def vehicles(self) -> set[str]:
        """Vehicles with a confirmation to give."""
        return {v for (v, _), t in self._tracks.items() if t.upto is not None}

    def confirmation(self, vehicle: str) -> StoredConfirmation | None:
        stored: dict[Stream, int] = {
            stream: track.upto
            for (v, stream), track in self._tracks.items()
            if v == vehicle and track.upto is not None
        }
        return StoredConfirmation(vehicle=vehicle, stored=stored) if stored else None
