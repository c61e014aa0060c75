"""The system of record, through SQLAlchemy Core (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.engine import Connection, Engine

from ingest.itinerary import Itinerary
from ingest.schema import migrate
from ingest.sql_dialects import check_database_url, insert_or_skip, upsert
from ingest.tables.base import UtcDateTime
from ingest.tables.intake import (
    batches,
    energy_samples,
    events,
    fridge_samples,
    gps_samples,
    rejections,
    stop_operators,
    stops,
    timeseries_outbox,
    vehicle_state,
    vehicles,
)
from ingest.timeseries import lines_for
from protocol.codec import MAX_PAYLOAD_BYTES
from protocol.models import (
    Batch,
    EnergyBatch,
    EnergySample,
    EventSample,
    FridgeBatch,
    FridgeSample,
    GpsBatch,
    GpsSample,
    StatusBatch,
    StatusSample,
)


def queue_points(conn: Connection, lines: Iterable[str]) -> None:
    """Queue line-protocol points for the time-series server in ``conn``'s transaction:
    they leave only if what they describe is committed."""
    rows = [{"line": line} for line in lines]
    if rows:
        conn.execute(timeseries_outbox.insert(), rows)


QUARANTINE_HEAD_BYTES = 2048
KEY_LOOKUP_CHUNK = 300
KEY_RACE_ATTEMPTS = 3

SAMPLE_TABLES = {
    "gps": gps_samples,
    "energy": energy_samples,
    "fridge": fridge_samples,
    "event": events,
}


@dataclass(frozen=True)
class Quarantined:
    """A rejected message, kept so an engineer can see what was sent and why it was refused."""

    topic: str
    payload: bytes
    reason: str
    detail: str
    received_at: datetime


def _advance_state(conn: Connection, stamp: str, changes: dict[str, dict[str, Any]]) -> None:
    """Set each vehicle's ``changes`` in ``vehicle_state`` where they are newer than what
    it holds, ``stamp`` being the column that says how new (the changes include it)."""
    if not changes:
        return
    vs = vehicle_state.c
    fields = list(next(iter(changes.values())))
    conn.execute(
        vehicle_state.update()
        .where(
            vs.vehicle == sa.bindparam("p_vehicle"),
            sa.or_(vs[stamp].is_(None), vs[stamp] < sa.bindparam(f"p_{stamp}")),
        )
        .values({f: sa.bindparam(f"p_{f}") for f in fields}),
        [
            {"p_vehicle": v, **{f"p_{k}": value for k, value in row.items()}}
            for v, row in changes.items()
        ],
    )


def _batch_key_row(batch: Batch, received_at: datetime) -> dict[str, Any]:
    return {
        "vehicle": batch.vehicle,
        "stream": batch.stream,
        "seq": batch.seq,
        "received_at": received_at,
        "samples": len(batch.samples),
    }


@dataclass(frozen=True)
class Position:
    vehicle: str
    operator: str
    label: str
    t: datetime
    lat: float
    lon: float
    speed_mps: float | None
    course_deg: float | None
    online: bool | None
    last_seen: datetime | None


@dataclass(frozen=True)
class VehicleRow:
    id: str
    operator: str
    label: str
    traction: str
    last_seen: datetime | None
    online: bool | None
    soc_pct: float | None = None
    battery_v: float | None = None
    energy_t: datetime | None = None
    fridge_temp_c: float | None = None
    fridge_door_open: bool | None = None
    fridge_t: datetime | None = None


@dataclass(frozen=True)
class Rejection:
    received_at: datetime
    topic: str
    reason: str
    detail: str
    payload_bytes: int
    payload_head: str


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot take writes now (down or restarting, a
    connection lost, locked by another writer, disk full): worth waiting for. Any other
    failure of a write is put down to the data written."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc,
        sa.exc.OperationalError
        | sa.exc.InterfaceError
        | sa.exc.DisconnectionError
        | sa.exc.TimeoutError
        | ConnectionError
        | TimeoutError,
    )


def describe_failure(exc: BaseException) -> str:
    """The database's (or its driver's) own message, without the statement."""
    cause = exc.orig if isinstance(exc, sa.exc.StatementError) and exc.orig else exc
    text = " ".join(str(cause).split()) or type(cause).__name__
    return f"{type(cause).__name__}: {text}"[:1000]


def link_online(
    online: bool | None, status_t: datetime | None, *data_t: datetime | None
) -> bool | None:
    """The link state from the freshest news: a status saying the bus is offline stands
    only while no sample newer than it has arrived (those prove the link came back)."""
    if online is False and status_t is not None and any(t and t > status_t for t in data_t):
        return True
    return online


def _storable(value: str | bytes) -> str:
    """Text any column holds, whatever a rejected message carried: no NUL, no lone
    surrogate, no invalid UTF-8 (each becomes U+FFFD)."""
    raw = value if isinstance(value, bytes) else value.encode("utf-8", errors="replace")
    return raw.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def _naive_utc(value: datetime) -> datetime:
    if value.utcoffset():
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None)


def _sqlite_time(value: datetime) -> str:
    # The text SQLAlchemy's SQLite dialect stores for a DATETIME (formatted by hand: on
    # the hot path, this is twice as fast as isoformat()).
    if value.utcoffset():
        value = value.astimezone(UTC)
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )


@functools.cache
def _key_lookup(dialect: sa.Dialect) -> tuple[str, tuple[str, ...] | None]:
    """The statement finding which of ``KEY_LOOKUP_CHUNK`` batch keys are stored, compiled
    once, with its parameter order (None for named parameters).

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
    return str(compiled), order


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
    def of(cls, table: sa.Table, model: type[BaseModel]) -> _SampleColumns:
        names = tuple(model.model_fields)
        missing = [n for n in names if n not in table.c]
        times = [n for n in names if isinstance(table.c[n].type, UtcDateTime)]
        # With a single name, attrgetter would return the value rather than a tuple.
        if missing or times != ["t"] or names[0] != "t" or len(names) < 3:
            raise RuntimeError(f"{model.__name__} does not map onto {table.name}")
        return cls(names, attrgetter(*names[1:]))


_SAMPLE_COLUMNS = {
    "gps": _SampleColumns.of(gps_samples, GpsSample),
    "energy": _SampleColumns.of(energy_samples, EnergySample),
    "fridge": _SampleColumns.of(fridge_samples, FridgeSample),
    "event": _SampleColumns.of(events, EventSample),
}
_BATCH_COLUMNS = ("vehicle", "stream", "seq", "received_at", "samples")
_Newest = TypeVar("_Newest", GpsSample, EnergySample, FridgeSample, StatusSample)


def _keep_newest(latest: dict[str, _Newest], vehicle: str, samples: Sequence[_Newest]) -> None:
    if not samples:
        return
    newest = max(samples, key=_by_time)
    if vehicle not in latest or latest[vehicle].t < newest.t:
        latest[vehicle] = newest


def _by_time(sample: GpsSample | EnergySample | FridgeSample | StatusSample) -> datetime:
    return sample.t


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


def create_engine(url: str) -> Engine:
    """An engine for SQLite (WAL) or PostgreSQL, the two databases the store speaks."""
    if sa.engine.make_url(check_database_url(url)).get_backend_name() == "sqlite":
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA cache_size=-65536")
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


class Store:
    """The system of record. With ``timeseries``, every stored sample is also queued, in
    the same transaction, as a point for the time-series server."""

    def __init__(self, engine: Engine, timeseries: bool = False) -> None:
        self.engine = engine
        self.timeseries = timeseries

    @classmethod
    def open(cls, url: str, timeseries: bool = False) -> Store:
        store = cls(create_engine(url), timeseries)
        store.create_schema()
        return store

    def create_schema(self) -> None:
        """Create or upgrade the tables, through the migrations."""
        migrate(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def load_fleet(self, itinerary: Itinerary) -> None:
        with self.engine.begin() as conn:
            for v in itinerary.vehicles:
                row = {"id": v.id, "operator": v.operator, "label": v.label, "traction": v.traction}
                upsert(conn, vehicles, ["id"], row)
            for s in itinerary.stops:
                stop = {
                    "id": s.id,
                    "name": s.name,
                    "lat": s.lat,
                    "lon": s.lon,
                    "radius_m": s.radius_m,
                    "nearest_surgery_km": s.nearest_surgery_km,
                }
                upsert(conn, stops, ["id"], stop)
            operators = [o.id for o in itinerary.operators]
            conn.execute(stop_operators.delete().where(stop_operators.c.operator.in_(operators)))
            served = [{"stop": s, "operator": o} for s, o in sorted(itinerary.stops_served())]
            if served:
                conn.execute(stop_operators.insert(), served)

    def vehicle_ids(self) -> set[str]:
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(sa.select(vehicles.c.id))}

    # --- writing -----------------------------------------------------------------

    def save_batch(self, batch: Batch, received_at: datetime) -> bool:
        """Store one batch; False if it was already stored."""
        return self.save_batches([(batch, received_at)])[0]

    def quarantine(
        self, topic: str, payload: bytes, reason: str, detail: str, received_at: datetime
    ) -> None:
        self.save_batches([], [Quarantined(topic, payload, reason, detail, received_at)])

    def save_batches(
        self,
        items: Sequence[tuple[Batch, datetime]],
        quarantined: Sequence[Quarantined] = (),
    ) -> list[bool]:
        """Store batches and quarantined messages in one transaction.

        Returns, per batch, True if it was new, False if it was a duplicate (already
        stored, or earlier in ``items``).
        """
        attempt = 1
        while True:
            try:
                with self.engine.begin() as conn:
                    return self._save_group(conn, items, quarantined)
            except sa.exc.IntegrityError:
                # Another ingest may have stored one of these keys between our check and
                # our insert: in a new transaction its keys are seen, and dropped as
                # duplicates. An error that comes back is the data's.
                if attempt == KEY_RACE_ATTEMPTS:
                    raise
                attempt += 1

    def _save_group(
        self,
        conn: Connection,
        items: Sequence[tuple[Batch, datetime]],
        quarantined: Sequence[Quarantined],
    ) -> list[bool]:
        keys = [(b.vehicle, b.stream, b.seq) for b, _ in items]
        seen = self._existing_keys(conn, keys)
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
            self._save_samples(conn, new)
        self._save_quarantined(conn, quarantined)
        return flags

    def _existing_keys(
        self, conn: Connection, keys: Sequence[tuple[str, str, int]]
    ) -> set[tuple[str, str, int]]:
        found: set[tuple[str, str, int]] = set()
        if not keys:
            return found
        sql, order = _key_lookup(conn.dialect)
        for start in range(0, len(keys), KEY_LOOKUP_CHUNK):
            chunk = list(keys[start : start + KEY_LOOKUP_CHUNK])
            chunk += [chunk[-1]] * (KEY_LOOKUP_CHUNK - len(chunk))  # one statement shape
            values: dict[str, Any] = {}
            for i, (vehicle, stream, seq) in enumerate(chunk):
                values.update({f"v{i}": vehicle, f"s{i}": stream, f"q{i}": seq})
            params: Any = values if order is None else tuple(values[k] for k in order)
            found.update((r[0], r[1], int(r[2])) for r in conn.exec_driver_sql(sql, params))
        return found

    def _save_samples(self, conn: Connection, items: Sequence[tuple[Batch, datetime]]) -> None:
        to_db = _time_to_db(conn)
        rows: dict[str, list[tuple[Any, ...]]] = {}
        latest_fix: dict[str, GpsSample] = {}
        latest_battery: dict[str, EnergySample] = {}
        latest_fridge: dict[str, FridgeSample] = {}
        # Each part of the live state moves only forward in its own time: a status or a
        # sample older than what is held (an outbox catching up, a replayed agent, a
        # last will composed when the bus connected) is stored but changes nothing.
        latest_status: dict[str, StatusSample] = {}
        last_seen: dict[str, datetime] = {}
        for batch, received_at in items:
            vehicle = batch.vehicle
            last_seen[vehicle] = max(received_at, last_seen.get(vehicle, received_at))
            if isinstance(batch, StatusBatch):
                _keep_newest(latest_status, vehicle, batch.samples)
                continue
            if isinstance(batch, GpsBatch):
                _keep_newest(latest_fix, vehicle, batch.samples)
            elif isinstance(batch, EnergyBatch):
                # The battery monitor's readings, not the solar charger's.
                _keep_newest(
                    latest_battery, vehicle, [e for e in batch.samples if e.soc_pct is not None]
                )
            elif isinstance(batch, FridgeBatch):
                _keep_newest(latest_fridge, vehicle, batch.samples)
            after_t = _SAMPLE_COLUMNS[batch.stream].after_t
            rows.setdefault(batch.stream, []).extend(
                [(vehicle, to_db(s.t), *after_t(s)) for s in batch.samples]
            )
        for stream, stream_rows in rows.items():
            columns = ("vehicle", *_SAMPLE_COLUMNS[stream].names)
            _bulk_insert(conn, SAMPLE_TABLES[stream], columns, stream_rows)
        if self.timeseries:
            points = [{"line": line} for batch, _ in items for line in lines_for(batch)]
            conn.execute(timeseries_outbox.insert(), points)
        conn.execute(insert_or_skip(conn, vehicle_state), [{"vehicle": v} for v in last_seen])
        _advance_state(conn, "last_seen", {v: {"last_seen": t} for v, t in last_seen.items()})
        # A late batch from an outbox catching up must not move the live position back.
        _advance_state(
            conn,
            "gps_t",
            {
                v: {
                    "gps_t": f.t,
                    "lat": f.lat,
                    "lon": f.lon,
                    "speed_mps": f.speed_mps,
                    "course_deg": f.course_deg,
                }
                for v, f in latest_fix.items()
            },
        )
        _advance_state(
            conn,
            "status_t",
            {v: {"status_t": st.t, "online": st.online} for v, st in latest_status.items()},
        )
        _advance_state(
            conn,
            "energy_t",
            {
                v: {"energy_t": e.t, "soc_pct": e.soc_pct, "battery_v": e.voltage_v}
                for v, e in latest_battery.items()
            },
        )
        _advance_state(
            conn,
            "fridge_t",
            {
                v: {"fridge_t": f.t, "fridge_temp_c": f.temp_c, "fridge_door_open": f.door_open}
                for v, f in latest_fridge.items()
            },
        )

    def _save_quarantined(self, conn: Connection, quarantined: Sequence[Quarantined]) -> None:
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

    # --- time-series buffer ------------------------------------------------------

    def pending_points(self, limit: int) -> list[tuple[int, str]]:
        c = timeseries_outbox.c
        query = sa.select(c.id, c.line).order_by(c.id).limit(limit)
        with self.engine.connect() as conn:
            return [(int(r[0]), str(r[1])) for r in conn.execute(query)]

    def forget_points(self, up_to_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(timeseries_outbox.delete().where(timeseries_outbox.c.id <= up_to_id))

    # --- retention ---------------------------------------------------------------

    def prune(self, before: datetime) -> dict[str, int]:
        """Delete raw samples older than ``before``, and the de-duplication keys of
        batches received before it; return how many rows went, per table.

        Keys may go with the samples as long as ``before`` is older than the ingest's
        ``max_age``: a redelivered batch that old is refused as stale before it could be
        taken for new.
        """
        removed: dict[str, int] = {}
        with self.engine.begin() as conn:
            for table in (gps_samples, energy_samples, fridge_samples, events):
                result = conn.execute(table.delete().where(table.c.t < before))
                removed[table.name] = result.rowcount
            result = conn.execute(batches.delete().where(batches.c.received_at < before))
            removed[batches.name] = result.rowcount
            result = conn.execute(rejections.delete().where(rejections.c.received_at < before))
            removed[rejections.name] = result.rowcount
        return removed

    def count_pending_points(self) -> int:
        query = sa.select(sa.func.count()).select_from(timeseries_outbox)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    # --- reading -----------------------------------------------------------------

    def vehicles(self) -> list[VehicleRow]:
        vs = vehicle_state.c
        query = (
            sa.select(
                vehicles,
                vs.last_seen,
                vs.online,
                vs.status_t,
                vs.gps_t,
                vs.soc_pct,
                vs.battery_v,
                vs.energy_t,
                vs.fridge_temp_c,
                vs.fridge_door_open,
                vs.fridge_t,
            )
            .select_from(vehicles.outerjoin(vehicle_state, vs.vehicle == vehicles.c.id))
            .order_by(vehicles.c.id)
        )
        with self.engine.connect() as conn:
            return [
                VehicleRow(
                    r.id,
                    r.operator,
                    r.label,
                    r.traction,
                    r.last_seen,
                    link_online(r.online, r.status_t, r.gps_t, r.energy_t, r.fridge_t),
                    r.soc_pct,
                    r.battery_v,
                    r.energy_t,
                    r.fridge_temp_c,
                    r.fridge_door_open,
                    r.fridge_t,
                )
                for r in conn.execute(query)
            ]

    def positions(self) -> list[Position]:
        vs = vehicle_state.c
        query = (
            sa.select(vehicle_state, vehicles.c.label, vehicles.c.operator)
            .select_from(vehicle_state.join(vehicles, vehicles.c.id == vs.vehicle))
            .where(vs.gps_t.is_not(None))
            .order_by(vs.vehicle)
        )
        with self.engine.connect() as conn:
            return [
                Position(
                    r.vehicle,
                    r.operator,
                    r.label,
                    r.gps_t,
                    r.lat,
                    r.lon,
                    r.speed_mps,
                    r.course_deg,
                    link_online(r.online, r.status_t, r.gps_t, r.energy_t, r.fridge_t),
                    r.last_seen,
                )
                for r in conn.execute(query)
            ]

    def stops(self, operator: str | None = None) -> Sequence[sa.Row[Any]]:
        """Every stop, or with ``operator`` those its vehicles use."""
        query = sa.select(stops).order_by(stops.c.id)
        if operator is not None:
            served = sa.select(stop_operators.c.stop).where(stop_operators.c.operator == operator)
            query = query.where(stops.c.id.in_(served))
        with self.engine.connect() as conn:
            return conn.execute(query).all()

    def gps_track(self, vehicle: str) -> list[GpsSample]:
        c = gps_samples.c
        query = sa.select(gps_samples).where(c.vehicle == vehicle).order_by(c.t)
        with self.engine.connect() as conn:
            return [
                GpsSample.model_validate(
                    {k: v for k, v in r._mapping.items() if k not in ("id", "vehicle")}
                )
                for r in conn.execute(query)
            ]

    def count_batches(self, vehicle: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(batches)
        if vehicle is not None:
            query = query.where(batches.c.vehicle == vehicle)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def rejection_counts(self, topics: Collection[str] | None = None) -> dict[str, int]:
        """Rejections by reason; with ``topics``, of messages sent on those only."""
        query = sa.select(rejections.c.reason, sa.func.count()).group_by(rejections.c.reason)
        if topics is not None:
            query = query.where(rejections.c.topic.in_(list(topics)))
        with self.engine.connect() as conn:
            return {r[0]: int(r[1]) for r in conn.execute(query)}

    def recent_rejections(
        self, limit: int = 50, topics: Collection[str] | None = None
    ) -> list[Rejection]:
        c = rejections.c
        query = sa.select(rejections).order_by(c.id.desc()).limit(limit)
        if topics is not None:
            query = query.where(c.topic.in_(list(topics)))
        with self.engine.connect() as conn:
            return [
                Rejection(
                    r.received_at, r.topic, r.reason, r.detail, r.payload_bytes, r.payload_head
                )
                for r in conn.execute(query)
            ]
