"""The settings the reports were computed with."""

from __future__ import annotations

import sqlalchemy as sa

from ingest.tables.base import UtcDateTime, metadata

report_configuration = sa.Table(
    "report_configuration",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("recorded_at", UtcDateTime, nullable=False),
)
