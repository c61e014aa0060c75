"""starter battery voltage

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 18:17:07.317311
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("energy_samples", schema=None) as batch_op:
        batch_op.add_column(sa.Column("starter_voltage_v", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("energy_samples", schema=None) as batch_op:
        batch_op.drop_column("starter_voltage_v")
