"""Days waiting to be rebuilt, and the readings each day's record starts from."""

from __future__ import annotations

import sqlalchemy as sa

from ingest.tables.base import UtcDateTime, metadata

pending_days = sa.Table(
    "pending_days",
    metadata,
    sa.Column("vehicle", sa.String(64), primary_key=True),
    sa.Column("record", sa.String(16), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("marked_at", UtcDateTime, nullable=False),
)


record_bases = sa.Table(
    "record_bases",
    metadata,
    sa.Column("vehicle", sa.String(64), primary_key=True),
    sa.Column("record", sa.String(16), primary_key=True),
    sa.Column("basis", sa.String(32), nullable=False),
)
