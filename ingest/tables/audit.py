"""Who changed what, when and from where."""

from __future__ import annotations

import sqlalchemy as sa

from ingest.tables.base import ROW_ID, UtcDateTime, metadata

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", ROW_ID, primary_key=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("who", sa.String(100), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("address", sa.String(64), nullable=False),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("target", sa.String(200), nullable=False),
    # What was said with the change (a reason, a comment, the times), as JSON.
    sa.Column("detail", sa.Text, nullable=False),
    sa.Index("ix_audit_log_at", "at"),
)
