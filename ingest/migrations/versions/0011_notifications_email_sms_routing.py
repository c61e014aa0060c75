"""notifications by e-mail and SMS, routing and escalation

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-03 09:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ingest.tables.base

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing rows are the webhook's: the defaults say so.
    with op.batch_alter_table("alert_notifications", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("channel", sa.String(16), nullable=False, server_default="webhook")
        )
        batch_op.add_column(
            sa.Column("recipient", sa.String(254), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("dedup_key", sa.String(200), nullable=True))
        batch_op.create_unique_constraint("uq_alert_notifications_dedup_key", ["dedup_key"])
    op.create_table(
        "alert_routing",
        sa.Column("alert_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("route", sa.Integer(), nullable=True),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("step_at", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.Column("reminded", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("alert_id"),
    )


def downgrade() -> None:
    op.drop_table("alert_routing")
    with op.batch_alter_table("alert_notifications", schema=None) as batch_op:
        batch_op.drop_constraint("uq_alert_notifications_dedup_key", type_="unique")
        batch_op.drop_column("dedup_key")
        batch_op.drop_column("recipient")
        batch_op.drop_column("channel")
