"""What several ingests sharing the load agree on: which one last derived each vehicle's
state, and the groups of batches stored whose derived state is not known to be done."""

from __future__ import annotations

import sqlalchemy as sa

from ingest.tables.base import UtcDateTime, metadata

# The ingest (its holder id, new at each start) that last derived a vehicle's state: one
# that finds another's id here knows its own memory of the vehicle is out of date.
derivation_owners = sa.Table(
    "derivation_owners",
    metadata,
    sa.Column("vehicle", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(64), nullable=False),
)

# One row per group of batches stored, written in the group's own transaction and
# deleted once its derived state is done: what an ingest that died in between left
# undone, another derives again from the stored samples. ``spans`` is JSON:
# {vehicle: [first sample time, last sample time]} in ISO 8601.
derivation_backlog = sa.Table(
    "derivation_backlog",
    metadata,
    sa.Column("holder", sa.String(64), primary_key=True),
    sa.Column("group_no", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("stored_at", UtcDateTime, nullable=False),
    sa.Column("spans", sa.Text, nullable=False),
)
