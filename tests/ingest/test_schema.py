"""The migrations create exactly the tables the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ingest.schema import all_tables, migrate
from ingest.store import Store


def test_migrations_match_the_declared_tables(store: Store) -> None:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, all_tables())
    assert differences == [], "a table changed without a migration: medicobus db revision"


def test_migrating_twice_changes_nothing(store: Store) -> None:
    migrate(store.engine)
    with store.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() is not None
