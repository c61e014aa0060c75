"""alert routing set per operator from the API; routes kept with routed alerts

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 18:05:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ingest.tables.base

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "operator_routing",
        sa.Column("operator", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("changed_by", sa.String(length=100), nullable=False),
        sa.Column("changed_at", ingest.tables.base.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("operator"),
    )
    with op.batch_alter_table("alert_routing") as batch_op:
        batch_op.add_column(sa.Column("route_json", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alert_routing") as batch_op:
        batch_op.drop_column("route_json")
    op.drop_table("operator_routing")
