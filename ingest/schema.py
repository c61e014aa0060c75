"""The schema of the system of record and its migrations (Alembic).

Every table is defined in :mod:`ingest.tables`, which imports nothing of the product's
code. A database is brought to the newest revision
by :func:`migrate`, which the ingest and the API call at start-up; a new revision is
written with ``medicobus db revision -m "what changes"`` after changing a table.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from ingest import tables


def all_tables() -> sa.MetaData:
    return tables.metadata


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("ingest") / "migrations"))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


# Any constant: the key of the PostgreSQL advisory lock held while migrating.
_MIGRATION_LOCK_KEY = 7_061_524_871


@contextmanager
def _sqlite_migration_lock(engine: Engine) -> Iterator[None]:
    """The ingest and the API may start together on a new SQLite file; SQLite runs each
    CREATE TABLE on its own, so the second would find the first's tables half made. A
    lock file beside the database makes one wait for the other."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migration-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def migrate(engine: Engine) -> None:
    """Bring the database to the newest revision (creates it from empty). Processes
    starting together take turns; the later ones find it done."""
    config = alembic_config(engine)
    with _sqlite_migration_lock(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def new_revision(engine: Engine, message: str) -> None:
    """Write a migration for the difference between the tables and the database."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)
