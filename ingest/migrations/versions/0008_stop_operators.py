"""stops served by each operator

Revision ID: 0008
Revises: 0004
Create Date: 2026-12-03 08:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stop_operators",
        sa.Column("stop", sa.String(length=64), nullable=False),
        sa.Column("operator", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("stop", "operator"),
    )
    # Until the fleet file is loaded again (it then lists depots and timetables too), an
    # operator is shown the stops its vehicles' visits and stays were at.
    op.execute(
        "INSERT INTO stop_operators (stop, operator) "
        "SELECT visits.stop, vehicles.operator FROM visits "
        "JOIN vehicles ON vehicles.id = visits.vehicle "
        "UNION "
        "SELECT unscheduled_stops.stop, vehicles.operator FROM unscheduled_stops "
        "JOIN vehicles ON vehicles.id = unscheduled_stops.vehicle"
    )


def downgrade() -> None:
    op.drop_table("stop_operators")
