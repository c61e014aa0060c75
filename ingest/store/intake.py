"""The intake: batches and their samples stored once each (the batch's key de-duplicates
redeliveries), and rejected messages kept in quarantine for engineers."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from operator import attrgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ingest.store import vehicle_state
from ingest.store.coordination import BacklogEntry, write_backlog
from ingest.store.outbox import emit
from ingest.tables.base import UtcDateTime
from ingest.tables.intake import (
    batches,
    energy_samples,
    events,
    fridge_samples,
    gps_samples,
    obd_samples,
    rejections,
)
from protocol.codec import MAX_PAYLOAD_BYTES
from protocol.models import Stream
from protocol.streams import BY_NAME
from protocol.wire import Batch, Sample, fields

QUARANTINE_HEAD_BYTES = 2048
KEY_LOOKUP_CHUNK = 300
KEY_RACE_ATTEMPTS = 3

SAMPLE_TABLES: dict[Stream, sa.Table] = {
    "gps": gps_samples,
    "energy": energy_samples,
    "fridge": fridge_samples,
    "event": events,
    "obd": obd_samples,
}


@dataclass(frozen=True)
class Quarantined:
    """A rejected message, kept so an engineer can see what was sent and why it was refused."""

    topic: str
    payload: bytes
    reason: str
    detail: str
    received_at: datetime


def _storable(value: str | bytes) -> str:
    """Text any column holds, whatever a rejected message carried: no NUL, no lone
    surrogate, no invalid UTF-8 (each becomes U+FFFD)."""
    raw = value if isinstance(value, bytes) else value.encode("utf-8", errors="replace")
    return raw.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def _naive_utc(value: datetime) -> datetime:
    if value.utcoffset():
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None)


_TIME_PARTS = attrgetter("year", "month", "day", "hour", "minute", "second", "microsecond")
_SQLITE_TIME = "%04d-%02d-%02d %02d:%02d:%02d.%06d".__mod__


def _sqlite_time(value: datetime) -> str:
    # The text SQLAlchemy's SQLite dialect stores for a DATETIME, formatted by hand: on
    # the hot path (every sample), isoformat() costs half as much again.
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return _SQLITE_TIME(_TIME_PARTS(value))


KeyParams = Callable[[Sequence[tuple[str, str, int]]], Any]


@functools.cache
def _key_lookup(dialect: sa.Dialect) -> tuple[str, KeyParams]:
    """The statement finding which of ``KEY_LOOKUP_CHUNK`` batch keys are stored, compiled
    once, with how a chunk of keys becomes its parameters.

    Written as an OR of equalities: SQLite answers a row-value ``IN (VALUES ...)`` by
    scanning the whole table, but each equality here is one primary-key lookup.
    """
    c = batches.c
    terms = [
        sa.and_(
            c.vehicle == sa.bindparam(f"v{i}"),
            c.stream == sa.bindparam(f"s{i}"),
            c.seq == sa.bindparam(f"q{i}"),
        )
        for i in range(KEY_LOOKUP_CHUNK)
    ]
    compiled = sa.select(c.vehicle, c.stream, c.seq).where(sa.or_(*terms)).compile(dialect=dialect)
    order = tuple(compiled.positiontup) if compiled.positiontup is not None else None
    if order == tuple(f"{n}{i}" for i in range(KEY_LOOKUP_CHUNK) for n in ("v", "s", "q")):
        # Positional, in the keys' own order: the keys laid end to end.
        return str(compiled), lambda chunk: tuple(chain.from_iterable(chunk))

    def named(chunk: Sequence[tuple[str, str, int]]) -> Any:
        values: dict[str, Any] = {}
        for i, (vehicle, stream, seq) in enumerate(chunk):
            values.update({f"v{i}": vehicle, f"s{i}": stream, f"q{i}": seq})
        return values if order is None else tuple(values[k] for k in order)

    return str(compiled), named


def _time_to_db(conn: Connection) -> Callable[[datetime], Any]:
    """How :class:`UtcDateTime` and the dialect store a time, for :func:`_bulk_insert`."""
    return _sqlite_time if conn.dialect.name == "sqlite" else _naive_utc


@dataclass(frozen=True)
class _SampleColumns:
    """A sample model's fields in table order (``t`` first) and a getter returning the
    values of those after ``t`` as one tuple."""

    names: tuple[str, ...]
    after_t: Callable[[Any], tuple[Any, ...]]

    @classmethod
    def of(cls, table: sa.Table, model: type[Sample]) -> _SampleColumns:
        names = fields(model)
        missing = [n for n in names if n not in table.c]
        times = [n for n in names if isinstance(table.c[n].type, UtcDateTime)]
        # With a single name, attrgetter would return the value rather than a tuple.
        if missing or times != ["t"] or names[0] != "t" or len(names) < 3:
            raise RuntimeError(f"{model.__name__} does not map onto {table.name}")
        return cls(names, attrgetter(*names[1:]))


_SAMPLE_COLUMNS = {
    name: _SampleColumns.of(table, BY_NAME[name].struct_sample)
    for name, table in SAMPLE_TABLES.items()
}
_BATCH_COLUMNS = ("vehicle", "stream", "seq", "received_at", "samples")


def _bulk_insert(
    conn: Connection, table: sa.Table, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """Insert many rows, given as tuples in ``columns`` order with times already as the
    database keeps them (:func:`_time_to_db`), through the driver's executemany with
    the statement compiled once.

    The sample tables take tens of thousands of rows a second; SQLAlchemy's per-row
    parameter processing costs more than the database itself there.
    """
    if not rows:
        return
    compiled = table.insert().compile(dialect=conn.dialect, column_keys=list(columns))
    if compiled.positiontup is None:
        conn.exec_driver_sql(str(compiled), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    index = {c: i for i, c in enumerate(columns)}
    order = [index[k] for k in compiled.positiontup]
    if order != list(range(len(columns))):
        rows = [tuple(row[i] for i in order) for row in rows]
    conn.exec_driver_sql(str(compiled), rows)


def save_batches(
    engine: Engine,
    items: Sequence[tuple[Batch, datetime]],
    quarantined: Sequence[Quarantined] = (),
    backlog: BacklogEntry | None = None,
) -> list[bool]:
    """Store batches and quarantined messages in one transaction, with ``backlog``'s row
    (:mod:`ingest.store.coordination`) if given.

    Returns, per batch, True if it was new, False if it was a duplicate (already
    stored, or earlier in ``items``).
    """
    attempt = 1
    while True:
        try:
            with engine.begin() as conn:
                return _save_group(conn, items, quarantined, backlog)
        except sa.exc.IntegrityError:
            # Another ingest may have stored one of these keys between our check and
            # our insert: in a new transaction its keys are seen, and dropped as
            # duplicates. An error that comes back is the data's.
            if attempt == KEY_RACE_ATTEMPTS:
                raise
            attempt += 1


def _save_group(
    conn: Connection,
    items: Sequence[tuple[Batch, datetime]],
    quarantined: Sequence[Quarantined],
    backlog: BacklogEntry | None = None,
) -> list[bool]:
    keys = [(b.vehicle, b.stream, b.seq) for b, _ in items]
    seen = _existing_keys(conn, keys)
    flags: list[bool] = []
    new: list[tuple[Batch, datetime]] = []
    for key, item in zip(keys, items, strict=True):
        fresh = key not in seen
        flags.append(fresh)
        if fresh:
            seen.add(key)
            new.append(item)
    if new:
        to_db = _time_to_db(conn)
        _bulk_insert(
            conn,
            batches,
            _BATCH_COLUMNS,
            [(b.vehicle, b.stream, b.seq, to_db(t), len(b.samples)) for b, t in new],
        )
        _save_samples(conn, new)
    if backlog is not None:
        stored_at = max((t for _, t in new), default=None) or datetime.now(UTC)
        write_backlog(conn, backlog, [b for b, _ in new], stored_at)
    _save_quarantined(conn, quarantined)
    return flags


def _existing_keys(
    conn: Connection, keys: Sequence[tuple[str, str, int]]
) -> set[tuple[str, str, int]]:
    found: set[tuple[str, str, int]] = set()
    if not keys:
        return found
    sql, params = _key_lookup(conn.dialect)
    for start in range(0, len(keys), KEY_LOOKUP_CHUNK):
        chunk = list(keys[start : start + KEY_LOOKUP_CHUNK])
        chunk += [chunk[-1]] * (KEY_LOOKUP_CHUNK - len(chunk))  # one statement shape
        found.update((r[0], r[1], int(r[2])) for r in conn.exec_driver_sql(sql, params(chunk)))
    return found


class _TimesToDb(dict[datetime, Any]):
    """Sample times as the database keeps them, each converted once per transaction: a
    fleet's GPS receivers fix on the same whole UTC seconds, so most of a group's fixes
    share their time with another bus's, and formatting a time costs more than the rest
    of its row."""

    def __init__(self, to_db: Callable[[datetime], Any]) -> None:
        super().__init__()
        self._to_db = to_db

    def __missing__(self, t: datetime) -> Any:
        value = self[t] = self._to_db(t)
        return value


def _save_samples(conn: Connection, items: Sequence[tuple[Batch, datetime]]) -> None:
    to_db = _TimesToDb(_time_to_db(conn))
    rows: dict[Stream, list[tuple[Any, ...]]] = {}
    for batch, _ in items:
        if not BY_NAME[batch.stream].kept_raw:
            continue
        after_t = _SAMPLE_COLUMNS[batch.stream].after_t
        rows.setdefault(batch.stream, []).extend(
            [(batch.vehicle, to_db[s.t], *after_t(s)) for s in batch.samples]
        )
    for stream, stream_rows in rows.items():
        columns = ("vehicle", *_SAMPLE_COLUMNS[stream].names)
        _bulk_insert(conn, SAMPLE_TABLES[stream], columns, stream_rows)
    emit(conn, (batch for batch, _ in items))
    vehicle_state.advance(conn, items)


def _save_quarantined(conn: Connection, quarantined: Sequence[Quarantined]) -> None:
    if not quarantined:
        return
    conn.execute(
        rejections.insert(),
        [
            {
                "received_at": q.received_at,
                "topic": _storable(q.topic)[:256],
                "reason": q.reason,
                "detail": _storable(q.detail),
                "payload_bytes": len(q.payload),
                "payload_head": _storable(q.payload[:QUARANTINE_HEAD_BYTES]),
                "payload": q.payload if len(q.payload) <= MAX_PAYLOAD_BYTES else None,
            }
            for q in quarantined
        ],
    )
