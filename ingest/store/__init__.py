"""The system of record, through SQLAlchemy Core (SQLite by default, PostgreSQL by URL).

Split by reason to change:

- :mod:`~ingest.store.engine` — connecting, and telling a database outage from bad data;
- :mod:`~ingest.store.intake` — batches and samples stored once each, quarantine;
- :mod:`~ingest.store.vehicle_state` — each vehicle's latest link, position, battery and
  fridge, moved forward as batches are stored;
- :mod:`~ingest.store.outbox` — points queued for the time-series server;
- :mod:`~ingest.store.retention` — what is deleted when;
- :mod:`~ingest.store.reads` — stops, raw tracks, counts and rejections for the API.

:class:`Store` holds the engine and whether points are queued, and is what the rest of
the product passes around.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ingest.itinerary import Itinerary
from ingest.schema import migrate
from ingest.sql_dialects import upsert
from ingest.store import intake, outbox, reads, retention, vehicle_state
from ingest.store.checkpoints import BACKSTOP_PAGES, BackgroundCheckpoints
from ingest.store.coordination import BacklogEntry, Coordinator
from ingest.store.engine import create_engine, database_unavailable, describe_failure
from ingest.store.intake import SAMPLE_TABLES, Quarantined
from ingest.store.outbox import POINTS_OPTION, Translator, emit, points_wanted, queue_points
from ingest.store.reads import Rejection
from ingest.store.vehicle_state import Position, VehicleRow, link_online
from ingest.tables.intake import stop_operators, stops, vehicles
from protocol.wire import Batch, GpsSample

__all__ = [
    "SAMPLE_TABLES",
    "BacklogEntry",
    "Coordinator",
    "Position",
    "Quarantined",
    "Rejection",
    "Store",
    "VehicleRow",
    "create_engine",
    "database_unavailable",
    "describe_failure",
    "emit",
    "link_online",
    "points_wanted",
    "queue_points",
]


class Store:
    """The system of record. With ``points`` (the translator of :mod:`ingest.points`),
    every record stored — samples, visits, days, alarms, alerts — is also queued, in the
    same transaction, as points for the time-series server."""

    def __init__(self, engine: Engine, points: Translator | None = None) -> None:
        self.engine = engine.execution_options(**{POINTS_OPTION: points}) if points else engine
        self._checkpoints: BackgroundCheckpoints | None = None

    @classmethod
    def open(
        cls, url: str, points: Translator | None = None, background_checkpoints: bool = False
    ) -> Store:
        """With ``background_checkpoints`` (the ingest's own store), a SQLite file's log
        is checkpointed by a thread of the store (:mod:`ingest.store.checkpoints`), the
        commits that fill it only doing so past a backstop."""
        parsed = sa.engine.make_url(url)
        database = parsed.database
        background = (
            background_checkpoints
            and parsed.get_backend_name() == "sqlite"
            and database not in (None, "", ":memory:")
        )
        pages = BACKSTOP_PAGES if background else 1000
        store = cls(create_engine(url, checkpoint_pages=pages), points)
        store.create_schema()
        if background:
            assert database is not None  # checked above
            store._checkpoints = BackgroundCheckpoints(Path(database)).start()
        return store

    def create_schema(self) -> None:
        """Create or upgrade the tables, through the migrations."""
        migrate(self.engine)

    def close(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.stop()
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

    # --- intake --------------------------------------------------------------------------

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
        backlog: BacklogEntry | None = None,
    ) -> list[bool]:
        """Store batches and quarantined messages in one transaction; per batch, True if
        it was new, False if it was a duplicate (already stored, or earlier in ``items``).
        ``backlog``: the row saying this group's derived state is to be done
        (:mod:`ingest.store.coordination`)."""
        return intake.save_batches(self.engine, items, quarantined, backlog)

    # --- time-series outbox, retention ---------------------------------------------------

    def pending_points(self, limit: int) -> list[tuple[int, str]]:
        return outbox.pending_points(self.engine, limit)

    def forget_points(self, up_to_id: int) -> None:
        outbox.forget_points(self.engine, up_to_id)

    def count_pending_points(self) -> int:
        return outbox.count_pending_points(self.engine)

    def prune(self, before: datetime) -> dict[str, int]:
        return retention.prune(self.engine, before)

    # --- reading -------------------------------------------------------------------------

    def vehicles(self) -> list[VehicleRow]:
        return vehicle_state.fleet_state(self.engine)

    def positions(self) -> list[Position]:
        return vehicle_state.positions(self.engine)

    def stops(self, operator: str | None = None) -> Sequence[sa.Row[Any]]:
        return reads.stops_used(self.engine, operator)

    def gps_track(self, vehicle: str) -> list[GpsSample]:
        return reads.gps_track(self.engine, vehicle)

    def count_batches(self, vehicle: str | None = None) -> int:
        return reads.count_batches(self.engine, vehicle)

    def rejection_counts(self, topics: Collection[str] | None = None) -> dict[str, int]:
        return reads.rejection_counts(self.engine, topics)

    def recent_rejections(
        self, limit: int = 50, topics: Collection[str] | None = None
    ) -> list[Rejection]:
        return reads.recent_rejections(self.engine, limit, topics)
