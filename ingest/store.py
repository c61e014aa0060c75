"""The system of record, through SQLAlchemy Core (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from ingest.itinerary import Itinerary
from protocol.models import Batch, EnergySample, EventSample, FridgeSample, GpsSample, StatusSample

metadata = sa.MetaData()


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, whatever the database keeps."""

    impl = sa.DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; times are UTC and aware")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


vehicles = sa.Table(
    "vehicles",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("operator", sa.String(64), nullable=False),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("traction", sa.String(16), nullable=False),
)

stops = sa.Table(
    "stops",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("lon", sa.Float, nullable=False),
    sa.Column("radius_m", sa.Float, nullable=False),
)

# One row per accepted message: the de-duplication key.
batches = sa.Table(
    "batches",
    metadata,
    sa.Column("vehicle", sa.String(64), primary_key=True),
    sa.Column("stream", sa.String(16), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("samples", sa.Integer, nullable=False),
)

gps_samples = sa.Table(
    "gps_samples",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("vehicle", sa.String(64), nullable=False),
    sa.Column("t", UtcDateTime, nullable=False),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("lon", sa.Float, nullable=False),
    sa.Column("alt_m", sa.Float),
    sa.Column("speed_mps", sa.Float),
    sa.Column("course_deg", sa.Float),
    sa.Column("fix_mode", sa.SmallInteger, nullable=False),
    sa.Column("quality", sa.SmallInteger, nullable=False),
    sa.Column("sats", sa.SmallInteger),
    sa.Column("hdop", sa.Float),
    sa.Index("ix_gps_vehicle_t", "vehicle", "t"),
)

energy_samples = sa.Table(
    "energy_samples",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("vehicle", sa.String(64), nullable=False),
    sa.Column("t", UtcDateTime, nullable=False),
    sa.Column("voltage_v", sa.Float),
    sa.Column("current_a", sa.Float),
    sa.Column("power_w", sa.Float),
    sa.Column("soc_pct", sa.Float),
    sa.Column("consumed_ah", sa.Float),
    sa.Column("pv_power_w", sa.Float),
    sa.Column("yield_today_kwh", sa.Float),
    sa.Column("source", sa.String(8)),
    sa.Column("time_to_go_min", sa.Float),
    sa.Column("alarm", sa.Boolean),
    sa.Column("alarm_reason", sa.Integer),
    sa.Column("pv_voltage_v", sa.Float),
    sa.Column("charge_state", sa.String(32)),
    sa.Column("charger_error", sa.SmallInteger),
    sa.Column("yield_total_kwh", sa.Float),
    sa.Index("ix_energy_vehicle_t", "vehicle", "t"),
)

fridge_samples = sa.Table(
    "fridge_samples",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("vehicle", sa.String(64), nullable=False),
    sa.Column("t", UtcDateTime, nullable=False),
    sa.Column("temp_c", sa.Float),
    sa.Column("humidity_pct", sa.Float),
    sa.Column("door_open", sa.Boolean),
    sa.Index("ix_fridge_vehicle_t", "vehicle", "t"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("vehicle", sa.String(64), nullable=False),
    sa.Column("t", UtcDateTime, nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)

# The latest known state of each vehicle, for live views.
vehicle_state = sa.Table(
    "vehicle_state",
    metadata,
    sa.Column("vehicle", sa.String(64), primary_key=True),
    sa.Column("last_seen", UtcDateTime),
    sa.Column("gps_t", UtcDateTime),
    sa.Column("lat", sa.Float),
    sa.Column("lon", sa.Float),
    sa.Column("speed_mps", sa.Float),
    sa.Column("course_deg", sa.Float),
    sa.Column("online", sa.Boolean),
    sa.Column("status_t", UtcDateTime),
)

# Every rejected message, with why: an engineer reads this to fix a bus or a firmware.
rejections = sa.Table(
    "rejections",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("topic", sa.String(256), nullable=False),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("payload_bytes", sa.Integer, nullable=False),
    sa.Column("payload_head", sa.Text, nullable=False),
    sa.Index("ix_rejections_reason", "reason"),
)

QUARANTINE_HEAD_BYTES = 2048


@dataclass(frozen=True)
class Position:
    vehicle: str
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


@dataclass(frozen=True)
class Rejection:
    received_at: datetime
    topic: str
    reason: str
    detail: str
    payload_bytes: int
    payload_head: str


def _insert_ignoring_duplicates(conn: Connection, table: sa.Table) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise NotImplementedError(f"unsupported database {conn.dialect.name}")


def create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        store = cls(create_engine(url))
        store.create_schema()
        return store

    def create_schema(self) -> None:
        metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def load_fleet(self, itinerary: Itinerary) -> None:
        with self.engine.begin() as conn:
            for v in itinerary.vehicles:
                row = {"id": v.id, "operator": v.operator, "label": v.label, "traction": v.traction}
                conn.execute(_insert_ignoring_duplicates(conn, vehicles).values(**row))
                conn.execute(vehicles.update().where(vehicles.c.id == v.id).values(**row))
            for s in itinerary.stops:
                row2 = {
                    "id": s.id,
                    "name": s.name,
                    "lat": s.lat,
                    "lon": s.lon,
                    "radius_m": s.radius_m,
                }
                conn.execute(_insert_ignoring_duplicates(conn, stops).values(**row2))
                conn.execute(stops.update().where(stops.c.id == s.id).values(**row2))

    def vehicle_ids(self) -> set[str]:
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(sa.select(vehicles.c.id))}

    # --- writing -----------------------------------------------------------------

    def save_batch(self, batch: Batch, received_at: datetime) -> bool:
        """Store one batch in one transaction; False if it was already stored."""
        with self.engine.begin() as conn:
            key = {
                "vehicle": batch.vehicle,
                "stream": batch.stream,
                "seq": batch.seq,
                "received_at": received_at,
                "samples": len(batch.samples),
            }
            result = conn.execute(_insert_ignoring_duplicates(conn, batches).values(**key))
            if result.rowcount == 0:
                return False
            self._touch(conn, batch.vehicle, received_at)
            self._save_samples(conn, batch, received_at)
            return True

    def _save_samples(self, conn: Connection, batch: Batch, received_at: datetime) -> None:
        vehicle = batch.vehicle
        rows = [{"vehicle": vehicle, **s.model_dump()} for s in batch.samples]
        first = batch.samples[0]
        if isinstance(first, GpsSample):
            conn.execute(gps_samples.insert(), rows)
            latest = max(batch.samples, key=lambda s: s.t)
            assert isinstance(latest, GpsSample)
            self._update_position(conn, vehicle, latest, received_at)
        elif isinstance(first, EnergySample):
            conn.execute(energy_samples.insert(), rows)
        elif isinstance(first, FridgeSample):
            conn.execute(fridge_samples.insert(), rows)
        elif isinstance(first, EventSample):
            conn.execute(events.insert(), rows)
        elif isinstance(first, StatusSample):
            latest_status = max(batch.samples, key=lambda s: s.t)
            assert isinstance(latest_status, StatusSample)
            self._update_status(conn, vehicle, latest_status, received_at)

    def _touch(self, conn: Connection, vehicle: str, received_at: datetime) -> None:
        conn.execute(_insert_ignoring_duplicates(conn, vehicle_state).values(vehicle=vehicle))
        vs = vehicle_state.c
        conn.execute(
            vehicle_state.update()
            .where(
                vs.vehicle == vehicle, sa.or_(vs.last_seen.is_(None), vs.last_seen < received_at)
            )
            .values(last_seen=received_at)
        )

    def _update_position(
        self, conn: Connection, vehicle: str, fix: GpsSample, received_at: datetime
    ) -> None:
        vs = vehicle_state.c
        # A late batch from an outbox catching up must not move the live position back.
        conn.execute(
            vehicle_state.update()
            .where(vs.vehicle == vehicle, sa.or_(vs.gps_t.is_(None), vs.gps_t < fix.t))
            .values(
                gps_t=fix.t,
                lat=fix.lat,
                lon=fix.lon,
                speed_mps=fix.speed_mps,
                course_deg=fix.course_deg,
            )
        )

    def _update_status(
        self, conn: Connection, vehicle: str, status: StatusSample, received_at: datetime
    ) -> None:
        vs = vehicle_state.c
        conn.execute(
            vehicle_state.update()
            .where(vs.vehicle == vehicle, sa.or_(vs.status_t.is_(None), vs.status_t < status.t))
            .values(online=status.online, status_t=status.t)
        )

    def quarantine(
        self, topic: str, payload: bytes, reason: str, detail: str, received_at: datetime
    ) -> None:
        head = payload[:QUARANTINE_HEAD_BYTES].decode("utf-8", errors="replace")
        with self.engine.begin() as conn:
            conn.execute(
                rejections.insert().values(
                    received_at=received_at,
                    topic=topic[:256],
                    reason=reason,
                    detail=detail,
                    payload_bytes=len(payload),
                    payload_head=head.replace("\x00", "\ufffd"),
                )
            )

    # --- reading -----------------------------------------------------------------

    def vehicles(self) -> list[VehicleRow]:
        vs = vehicle_state.c
        query = (
            sa.select(vehicles, vs.last_seen, vs.online)
            .select_from(vehicles.outerjoin(vehicle_state, vs.vehicle == vehicles.c.id))
            .order_by(vehicles.c.id)
        )
        with self.engine.connect() as conn:
            return [
                VehicleRow(r.id, r.operator, r.label, r.traction, r.last_seen, r.online)
                for r in conn.execute(query)
            ]

    def positions(self) -> list[Position]:
        vs = vehicle_state.c
        query = (
            sa.select(vehicle_state, vehicles.c.label)
            .select_from(vehicle_state.join(vehicles, vehicles.c.id == vs.vehicle))
            .where(vs.gps_t.is_not(None))
            .order_by(vs.vehicle)
        )
        with self.engine.connect() as conn:
            return [
                Position(
                    r.vehicle,
                    r.label,
                    r.gps_t,
                    r.lat,
                    r.lon,
                    r.speed_mps,
                    r.course_deg,
                    r.online,
                    r.last_seen,
                )
                for r in conn.execute(query)
            ]

    def stops(self) -> Sequence[sa.Row[Any]]:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(stops).order_by(stops.c.id)).all()

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

    def rejection_counts(self) -> dict[str, int]:
        query = sa.select(rejections.c.reason, sa.func.count()).group_by(rejections.c.reason)
        with self.engine.connect() as conn:
            return {r[0]: int(r[1]) for r in conn.execute(query)}

    def recent_rejections(self, limit: int = 50) -> list[Rejection]:
        c = rejections.c
        query = sa.select(rejections).order_by(c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [
                Rejection(
                    r.received_at, r.topic, r.reason, r.detail, r.payload_bytes, r.payload_head
                )
                for r in conn.execute(query)
            ]
