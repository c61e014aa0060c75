"""Inserts that tolerate a row already being there, on SQLite and PostgreSQL alike.

Both dialects speak ``INSERT ... ON CONFLICT``, but SQLAlchemy builds it per dialect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection


def insert_statement(conn: Connection, table: sa.Table) -> Any:
    """The dialect's own INSERT, which has ``on_conflict_do_*`` and ``excluded``."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database {conn.dialect.name}")


def insert_or_skip(conn: Connection, table: sa.Table) -> Any:
    """An insert that does nothing when any unique constraint or index would be broken."""
    return insert_statement(conn, table).on_conflict_do_nothing()


def upsert(
    conn: Connection,
    table: sa.Table,
    key: Sequence[str],
    values: Mapping[str, Any],
    on_conflict: Mapping[str, Any] | None = None,
) -> None:
    """Insert ``values``, or on a clash of ``key`` set ``on_conflict`` (default: the values)."""
    stmt = insert_statement(conn, table).values(**values)
    update = (
        dict(on_conflict)
        if on_conflict is not None
        else {k: v for k, v in values.items() if k not in key}
    )
    conn.execute(stmt.on_conflict_do_update(index_elements=list(key), set_=update))
