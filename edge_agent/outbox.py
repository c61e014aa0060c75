"""The store-and-forward outbox: every sample on disk (SQLite) until the ingest has it.

Two tables. ``sample`` holds samples not yet in a batch, one row each, in arrival
order. ``batch`` holds batches formed and not yet confirmed by the ingest: the encoded
payload exactly as published, with its ``(stream, seq)``. A batch is formed, numbered and
its samples deleted in one transaction, so a batch re-sent after a crash is the same
message with the same ``seq`` and the cloud recognises it as a duplicate.

Batches are formed only when the link is up, from the oldest samples of each stream,
so what piled up while offline leaves in large batches (up to ``max_batch_samples``)
and live samples follow in the same pass. Writes go through :meth:`Outbox.transaction`;
the agent opens one per commit interval (group commit). The size bound and what it
gives up first are in :mod:`edge_agent.eviction`.

One thread at a time uses an ``Outbox``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from edge_agent.batching import (
    MAX_BATCH_BYTES,
    Sample,
    build_batch,
    parse_samples,
    sample_json,
    samples_that_fit,
    stream_of,
)
from edge_agent.eviction import eviction_plan
from edge_agent.sequence import SEQUENCE_SCHEMA, first_seq, take_seq
from protocol.codec import ProtocolError, decode, encode
from protocol.models import Stream
from protocol.topics import STREAMS

log = logging.getLogger(__name__)

_SCHEMA: Final = (
    SEQUENCE_SCHEMA,
    "CREATE TABLE IF NOT EXISTS sample ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL, body BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS sample_by_stream ON sample (stream, id)",
    # AUTOINCREMENT: ids never go back, so "batches after id N" is a valid cursor.
    "CREATE TABLE IF NOT EXISTS batch ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL, seq INTEGER NOT NULL,"
    " samples INTEGER NOT NULL, payload BLOB NOT NULL, UNIQUE (stream, seq))",
    "CREATE INDEX IF NOT EXISTS batch_by_stream ON batch (stream, id)",
)
_CHUNK: Final = 500  # rows per statement when deleting by id or scanning for eviction


class OutboxError(RuntimeError):
    """The outbox file cannot be used; the message says which file and why."""


@dataclass(frozen=True)
class OutboxLimits:
    max_bytes: int = 256 * 1024 * 1024
    max_batch_samples: int = 500
    max_batch_bytes: int = MAX_BATCH_BYTES


@dataclass(frozen=True)
class StoredBatch:
    id: int
    stream: Stream
    seq: int
    samples: int
    payload: bytes


@dataclass
class _Tally:
    """What the outbox holds, per stream, kept in memory so a commit needs no scan."""

    bytes: Counter[Stream]
    unbatched: Counter[Stream]
    batched_samples: int
    batches: int

    def copy(self) -> _Tally:
        return _Tally(
            Counter(self.bytes), Counter(self.unbatched), self.batched_samples, self.batches
        )


class Outbox:
    def __init__(self, path: Path, vehicle: str, limits: OutboxLimits | None = None) -> None:
        self.path = path
        self.vehicle = vehicle
        self.limits = limits or OutboxLimits()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise OutboxError(f"{path}: cannot open the outbox ({exc})") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on the card before the samples count as kept, even
            # when the bus's power is cut rather than the agent killed.
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA:
                self._db.execute(statement)
            self._db.execute("COMMIT")
            self._tally = self._count()
        except sqlite3.Error as exc:
            self._db.close()
            raise OutboxError(f"{path}: not a usable outbox database ({exc})") from None

    def _count(self) -> _Tally:
        tally = _Tally(Counter(), Counter(), 0, 0)
        for stream, size, count in self._db.execute(
            "SELECT stream, SUM(length(body)), COUNT(*) FROM sample GROUP BY stream"
        ):
            tally.bytes[stream] += size
            tally.unbatched[stream] = count
        for stream, size, samples, count in self._db.execute(
            "SELECT stream, SUM(length(payload)), SUM(samples), COUNT(*) FROM batch GROUP BY stream"
        ):
            tally.bytes[stream] += size
            tally.batched_samples += samples
            tally.batches += count
        return tally

    @contextmanager
    def transaction(self) -> Iterator[OutboxTransaction]:
        """One atomic, durable change; nothing of it is kept if the block raises."""
        self._db.execute("BEGIN IMMEDIATE")
        tx = OutboxTransaction(self._db, self.vehicle, self.limits, self._tally.copy())
        try:
            yield tx
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._tally = tx.tally

    @property
    def depth(self) -> int:
        """Samples kept and not yet acknowledged, whether batched or not."""
        return sum(self._tally.unbatched.values()) + self._tally.batched_samples

    @property
    def batch_count(self) -> int:
        """Batches formed and not yet acknowledged."""
        return self._tally.batches

    def usage(self) -> dict[Stream, int]:
        """Bytes kept per stream, as the size bound counts them."""
        return {s: n for s, n in self._tally.bytes.items() if n}

    def number_streams(self) -> None:
        """Give every stream its first number now, if it has none, without taking it: the
        floors the status reports carry then cover streams that have sent nothing yet."""
        with self.transaction():
            for stream in STREAMS:
                self._db.execute(
                    "INSERT INTO sequence (stream, next) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    (stream, first_seq()),
                )

    def held_from(self) -> dict[Stream, int]:
        """Per stream, the lowest seq still held (formed, not confirmed), or the next seq
        to be taken when none is: every lower seq is confirmed or given up."""
        floors: dict[Stream, int] = {}
        for stream, next_seq in self._db.execute("SELECT stream, next FROM sequence"):
            if stream in STREAMS:
                floors[stream] = int(next_seq)
        for stream, lowest in self._db.execute(
            "SELECT stream, MIN(seq) FROM batch GROUP BY stream"
        ):
            floors[stream] = min(int(lowest), floors.get(stream, int(lowest)))
        return floors

    def batches_by_id(self, ids: Collection[int]) -> list[StoredBatch]:
        """The formed batches among ``ids`` (those evicted or confirmed are gone)."""
        id_list = sorted(ids)
        out: list[StoredBatch] = []
        for start in range(0, len(id_list), _CHUNK):
            chunk = id_list[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT id, stream, seq, samples, payload FROM batch WHERE id IN ({marks}) "
                "ORDER BY id",
                chunk,
            ).fetchall()
            out.extend(StoredBatch(i, st, sq, n, bytes(p)) for i, st, sq, n, p in rows)
        return out

    def batches_after(self, batch_id: int, limit: int) -> list[StoredBatch]:
        """Formed batches with an id over ``batch_id``, oldest first."""
        rows = self._db.execute(
            "SELECT id, stream, seq, samples, payload FROM batch WHERE id > ? ORDER BY id LIMIT ?",
            (batch_id, limit),
        ).fetchall()
        return [StoredBatch(i, stream, seq, n, bytes(p)) for i, stream, seq, n, p in rows]

    def stored_samples(self) -> dict[Stream, list[Sample]]:
        """Every sample kept, per stream, oldest first (batched ones before the others)."""
        out: dict[Stream, list[Sample]] = {}
        for (payload,) in self._db.execute("SELECT payload FROM batch ORDER BY id"):
            batch = decode(bytes(payload))
            out.setdefault(batch.stream, []).extend(batch.samples)
        for stream in STREAMS:
            bodies = [
                bytes(b)
                for (b,) in self._db.execute(
                    "SELECT body FROM sample WHERE stream = ? ORDER BY id", (stream,)
                )
            ]
            if bodies:
                out.setdefault(stream, []).extend(parse_samples(stream, bodies))
        return out

    def close(self) -> None:
        self._db.close()


class OutboxTransaction:
    """The changes of one commit. Counts of what was done are kept on the object."""

    def __init__(
        self, db: sqlite3.Connection, vehicle: str, limits: OutboxLimits, tally: _Tally
    ) -> None:
        self._db = db
        self._vehicle = vehicle
        self._limits = limits
        self.tally = tally
        self.evicted: Counter[Stream] = Counter()
        self.rejected = 0

    def add(self, samples: Sequence[Sample]) -> None:
        rows = [(stream_of(s), sample_json(s)) for s in samples]
        self._db.executemany("INSERT INTO sample (stream, body) VALUES (?, ?)", rows)
        for stream, body in rows:
            self.tally.bytes[stream] += len(body)
            self.tally.unbatched[stream] += 1

    def remove_batches(self, ids: Collection[int]) -> int:
        """Delete acknowledged batches; ids no longer there (evicted) are skipped."""
        removed = 0
        id_list = list(ids)
        for start in range(0, len(id_list), _CHUNK):
            chunk = id_list[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"DELETE FROM batch WHERE id IN ({marks}) "
                "RETURNING stream, length(payload), samples",
                chunk,
            ).fetchall()
            for stream, size, samples in rows:
                self._forget_batch(stream, size, samples)
            removed += len(rows)
        return removed

    def remove_confirmed(self, stored: Mapping[Stream, int]) -> list[int]:
        """Delete the batches the ingest confirmed (per stream, every seq up to the
        given one); returns their ids."""
        removed: list[int] = []
        for stream, upto in stored.items():
            rows = self._db.execute(
                "DELETE FROM batch WHERE stream = ? AND seq <= ? "
                "RETURNING id, length(payload), samples",
                (stream, upto),
            ).fetchall()
            for batch_id, size, samples in rows:
                self._forget_batch(stream, size, samples)
                removed.append(batch_id)
        return removed

    def _forget_batch(self, stream: Stream, size: int, samples: int) -> None:
        self.tally.bytes[stream] -= size
        self.tally.batched_samples -= samples
        self.tally.batches -= 1

    def take_seq(self, stream: Stream) -> int:
        return take_seq(self._db, stream)

    def evict(self) -> Counter[Stream]:
        """Apply the size bound; returns the samples given up per stream."""
        plan = eviction_plan(self.tally.bytes, self._limits.max_bytes)
        for stream, target in plan.items():
            freed = self._evict_batches(stream, target)
            if freed < target:
                self._evict_samples(stream, target - freed)
            log.warning(
                "outbox full: gave up the %d oldest %s sample(s)", self.evicted[stream], stream
            )
        return self.evicted

    def _evict_batches(self, stream: Stream, target: int) -> int:
        freed = 0
        rows = self._db.execute(
            "SELECT id, length(payload), samples FROM batch WHERE stream = ? ORDER BY id",
            (stream,),
        ).fetchall()
        for batch_id, size, samples in rows:
            if freed >= target:
                break
            self._db.execute("DELETE FROM batch WHERE id = ?", (batch_id,))
            self._forget_batch(stream, size, samples)
            self.evicted[stream] += samples
            freed += size
        return freed

    def _evict_samples(self, stream: Stream, target: int) -> None:
        freed = 0
        while freed < target:
            rows = self._db.execute(
                "SELECT id, length(body) FROM sample WHERE stream = ? ORDER BY id LIMIT ?",
                (stream, _CHUNK),
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            count = 0
            for sample_id, size in rows:
                freed += size
                count += 1
                if freed >= target:
                    last = sample_id
                    break
            self._db.execute("DELETE FROM sample WHERE stream = ? AND id <= ?", (stream, last))
            self.tally.unbatched[stream] -= count
            self.evicted[stream] += count
            self.tally.bytes[stream] -= sum(size for _, size in rows[:count])

    def form_batches(self, max_batches: int) -> int:
        """Turn the oldest samples of each stream into numbered batches, a stream at a
        time in turn so none waits behind another's backlog; returns how many."""
        formed = 0
        waiting = [s for s in STREAMS if self.tally.unbatched[s] > 0]
        while waiting and formed < max_batches:
            for stream in list(waiting):
                if formed >= max_batches:
                    break
                if self._form_one(stream):
                    formed += 1
                if self.tally.unbatched[stream] <= 0:
                    waiting.remove(stream)
        return formed

    def _form_one(self, stream: Stream) -> bool:
        rows: list[tuple[int, bytes]] = [
            (i, bytes(b))
            for i, b in self._db.execute(
                "SELECT id, body FROM sample WHERE stream = ? ORDER BY id LIMIT ?",
                (stream, self._limits.max_batch_samples),
            )
        ]
        if not rows:
            self.tally.unbatched[stream] = 0
            return False
        count = samples_that_fit(
            [len(b) for _, b in rows], self._limits.max_batch_samples, self._limits.max_batch_bytes
        )
        seq = self.take_seq(stream)
        while True:
            taken = rows[:count]
            try:
                built = build_batch(self._vehicle, stream, seq, [b for _, b in taken])
                payload = encode(built.batch)
                break
            except (ValueError, ProtocolError) as exc:
                # A sample that cannot travel (too big alone, or no longer valid):
                # set it aside rather than block the stream behind it.
                if count == 1:
                    log.error("outbox: dropping a %s sample that cannot be sent: %s", stream, exc)
                    self._delete_samples(stream, taken)
                    self.rejected += 1
                    return False
                count //= 2
        self._db.execute(
            "INSERT INTO batch (stream, seq, samples, payload) VALUES (?, ?, ?, ?)",
            (stream, seq, len(built.batch.samples), payload),
        )
        self._delete_samples(stream, taken)
        self.rejected += built.rejected
        self.tally.bytes[stream] += len(payload)
        self.tally.batched_samples += len(built.batch.samples)
        self.tally.batches += 1
        return True

    def _delete_samples(self, stream: Stream, taken: list[tuple[int, bytes]]) -> None:
        self._db.execute("DELETE FROM sample WHERE stream = ? AND id <= ?", (stream, taken[-1][0]))
        self.tally.unbatched[stream] -= len(taken)
        self.tally.bytes[stream] -= sum(len(b) for _, b in taken)
