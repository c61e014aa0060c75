"""Inserts that tolerate a row already being there, on SQLite and PostgreSQL alike.

Both dialects speak ``INSERT ... ON CONFLICT``, but SQLAlchemy builds it per dialect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

SUPPORTED_BACKENDS = ("sqlite", "postgresql")


class UnsupportedDatabaseError(ValueError):
    """A database URL for a backend the store does not speak."""

    def __init__(self, backend: str) -> None:
        super().__init__(
            f"unsupported database {backend!r}: use sqlite:///… or postgresql+psycopg://…"
        )


def check_database_url(url: str) -> str:
    """``url`` if the store can use it; raise :class:`UnsupportedDatabaseError` otherwise."""
    try:
        backend = sa.engine.make_url(url).get_backend_name()
    except sa.exc.ArgumentError:
        raise ValueError(f"{url!r} is not a database URL") from None
    if backend not in SUPPORTED_BACKENDS:
        raise UnsupportedDatabaseError(backend)
    return url


def insert_statement(conn: Connection, table: sa.Table) -> Any:
    """The dialect's own INSERT, which has ``on_conflict_do_*`` and ``excluded``."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise UnsupportedDatabaseError(conn.dialect.name)


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
