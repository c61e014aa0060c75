"""Connecting to the system of record, and telling a database outage from bad data."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ingest.sql_dialects import check_database_url


def create_engine(url: str, checkpoint_pages: int = 1000) -> Engine:
    """An engine for SQLite (WAL) or PostgreSQL, the two databases the store speaks.

    On SQLite, a commit that takes the log to ``checkpoint_pages`` copies it back into
    the database (SQLite's default is 1000; see :mod:`ingest.store.checkpoints`).
    """
    if sa.engine.make_url(check_database_url(url)).get_backend_name() == "sqlite":
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA cache_size=-65536")
            cur.execute(f"PRAGMA wal_autocheckpoint={int(checkpoint_pages)}")
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot take writes now (down or restarting, a
    connection lost, locked by another writer, disk full): worth waiting for. Any other
    failure of a write is put down to the data written."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc,
        sa.exc.OperationalError
        | sa.exc.InterfaceError
        | sa.exc.DisconnectionError
        | sa.exc.TimeoutError
        | ConnectionError
        | TimeoutError,
    )


def describe_failure(exc: BaseException) -> str:
    """The database's (or its driver's) own message, without the statement."""
    cause = exc.orig if isinstance(exc, sa.exc.StatementError) and exc.orig else exc
    text = " ".join(str(cause).split()) or type(cause).__name__
    return f"{type(cause).__name__}: {text}"[:1000]
