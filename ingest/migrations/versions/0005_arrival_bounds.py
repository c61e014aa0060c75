"""arrival bounds, matching windows' start and coordinators' notes

Arrivals estimated inside a GPS outage keep their earliest and latest; each visit keeps
where its matching window opens; a confirmation's or a count's note moves out of
``reason`` into its own column.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 08:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ingest.tables.base import UtcDateTime

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = {
    "stop_events": ("earliest", "latest"),
    "visits": ("detected_arrival_earliest", "detected_arrival_latest"),
    "unscheduled_stops": ("arrival_earliest", "arrival_latest"),
}


def upgrade() -> None:
    for table, columns in _COLUMNS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.add_column(sa.Column(column, UtcDateTime(), nullable=True))
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("opens_at", UtcDateTime(), nullable=True))
    with op.batch_alter_table("visit_changes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
    changes = sa.table(
        "visit_changes", sa.column("kind", sa.String), sa.column("reason"), sa.column("note")
    )
    op.execute(
        changes.update()
        .where(changes.c.kind.in_(("confirm", "attendance")))
        .values(note=changes.c.reason, reason=None)
    )


def downgrade() -> None:
    changes = sa.table(
        "visit_changes", sa.column("kind", sa.String), sa.column("reason"), sa.column("note")
    )
    op.execute(
        changes.update()
        .where(changes.c.kind.in_(("confirm", "attendance")))
        .values(reason=changes.c.note)
    )
    with op.batch_alter_table("visit_changes", schema=None) as batch_op:
        batch_op.drop_column("note")
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_column("opens_at")
    for table, columns in _COLUMNS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in reversed(columns):
                batch_op.drop_column(column)
