"""Alembic's entry point: migrates the connection the store hands over."""

from __future__ import annotations

from alembic import context

from ingest.schema import all_tables

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("migrations run through ingest.schema.migrate(engine)")
context.configure(
    connection=connection,
    target_metadata=all_tables(),
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
