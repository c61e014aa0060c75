"""coordinators' public messages on visits

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 17:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("visit_changes") as batch_op:
        batch_op.add_column(sa.Column("public_message", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("visit_changes") as batch_op:
        batch_op.drop_column("public_message")
