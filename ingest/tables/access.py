"""Personal API tokens kept in the system of record (their SHA-256 only)."""

from __future__ import annotations

import sqlalchemy as sa

from ingest.tables.base import ROW_ID, UtcDateTime, metadata

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", ROW_ID, primary_key=True),
    sa.Column("label", sa.String(100), nullable=False),
    sa.Column("person", sa.String(100), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("operator", sa.String(64)),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("last_used_at", UtcDateTime),
    sa.Column("revoked_at", UtcDateTime),
)
