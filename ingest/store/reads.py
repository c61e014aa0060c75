"""What the API reads of the intake: stops, raw tracks, batch counts and rejected
messages; and the stored samples of a span, as the ingest derives state again from them."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ingest.store.intake import SAMPLE_TABLES
from ingest.tables.intake import batches, gps_samples, rejections, stop_operators, stops
from protocol.streams import BY_NAME
from protocol.wire import Batch, GpsSample, fields


@dataclass(frozen=True)
class Rejection:
    received_at: datetime
    topic: str
    reason: str
    detail: str
    payload_bytes: int
    payload_head: str


def stops_used(engine: Engine, operator: str | None = None) -> Sequence[sa.Row[Any]]:
    """Every stop, or with ``operator`` those its vehicles use."""
    query = sa.select(stops).order_by(stops.c.id)
    if operator is not None:
        served = sa.select(stop_operators.c.stop).where(stop_operators.c.operator == operator)
        query = query.where(stops.c.id.in_(served))
    with engine.connect() as conn:
        return conn.execute(query).all()


def gps_track(engine: Engine, vehicle: str) -> list[GpsSample]:
    c = gps_samples.c
    query = sa.select(gps_samples).where(c.vehicle == vehicle).order_by(c.t)
    with engine.connect() as conn:
        names = fields(GpsSample)
        return [GpsSample(**{n: r._mapping[n] for n in names}) for r in conn.execute(query)]


def count_batches(engine: Engine, vehicle: str | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(batches)
    if vehicle is not None:
        query = query.where(batches.c.vehicle == vehicle)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def rejection_counts(engine: Engine, topics: Collection[str] | None = None) -> dict[str, int]:
    """Rejections by reason; with ``topics``, of messages sent on those only."""
    query = sa.select(rejections.c.reason, sa.func.count()).group_by(rejections.c.reason)
    if topics is not None:
        query = query.where(rejections.c.topic.in_(list(topics)))
    with engine.connect() as conn:
        return {r[0]: int(r[1]) for r in conn.execute(query)}


def recent_rejections(
    engine: Engine, limit: int = 50, topics: Collection[str] | None = None
) -> list[Rejection]:
    c = rejections.c
    query = sa.select(rejections).order_by(c.id.desc()).limit(limit)
    if topics is not None:
        query = query.where(c.topic.in_(list(topics)))
    with engine.connect() as conn:
        return [
            Rejection(r.received_at, r.topic, r.reason, r.detail, r.payload_bytes, r.payload_head)
            for r in conn.execute(query)
        ]


def stored_batches(engine: Engine, vehicle: str, lo: datetime, hi: datetime) -> list[Batch]:
    """The samples ``vehicle`` has stored from ``lo`` to ``hi``, one batch per stream, as
    the observers take them (built without checks: they were checked when stored)."""
    found: list[Batch] = []
    with engine.connect() as conn:
        for stream, table in SAMPLE_TABLES.items():
            spec = BY_NAME[stream]
            names = fields(spec.struct_sample)
            c = table.c
            query = (
                sa.select(*(c[n] for n in names))
                .where(c.vehicle == vehicle, c.t >= lo, c.t <= hi)
                .order_by(c.t)
            )
            samples: list[Any] = [
                spec.struct_sample(**dict(zip(names, r, strict=True))) for r in conn.execute(query)
            ]
            if samples:
                found.append(spec.struct_batch(vehicle=vehicle, seq=0, samples=samples))
    return found
