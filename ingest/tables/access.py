"""Who may use the API: personal tokens (their SHA-256 only), accounts that sign in
with a password, and their browser sessions."""

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

# People who sign in with an e-mail and a password (Argon2id hash), and their browser
# sessions (the SHA-256 of the cookie's random value).
accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", ROW_ID, primary_key=True),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("operator", sa.String(64)),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("password_set_at", UtcDateTime, nullable=False),
    sa.Column("last_sign_in_at", UtcDateTime),
    sa.Column("disabled_at", UtcDateTime),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", ROW_ID, primary_key=True),
    sa.Column(
        "account_id", ROW_ID, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("address", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("ended_at", UtcDateTime),
)
