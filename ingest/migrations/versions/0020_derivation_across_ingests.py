"""several ingests on one database: who last derived each vehicle, and the groups of
batches whose derived state is not known to be done

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 07:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ingest.tables.base

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "derivation_owners",
        sa.Column("vehicle", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(64), nullable=False),
    )
    op.create_table(
        "derivation_backlog",
        sa.Column("holder", sa.String(64), primary_key=True),
        sa.Column("group_no", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("stored_at", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("spans", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("derivation_backlog")
    op.drop_table("derivation_owners")
