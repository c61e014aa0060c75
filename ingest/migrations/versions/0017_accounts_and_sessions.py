"""accounts that sign in with a password, and their browser sessions

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 04:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ingest.tables.base

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    row_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "accounts",
        sa.Column("id", row_id, primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("operator", sa.String(64), nullable=True),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("created_at", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("password_set_at", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("last_sign_in_at", ingest.tables.base.UtcDateTime(), nullable=True),
        sa.Column("disabled_at", ingest.tables.base.UtcDateTime(), nullable=True),
        sa.UniqueConstraint("email"),
    )
    op.create_table(
        "sessions",
        sa.Column("id", row_id, primary_key=True),
        sa.Column(
            "account_id",
            row_id,
            sa.ForeignKey("accounts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("created_at", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("expires_at", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("ended_at", ingest.tables.base.UtcDateTime(), nullable=True),
        sa.UniqueConstraint("token_sha256"),
    )


def downgrade() -> None:
    op.drop_table("sessions")
    op.drop_table("accounts")
