"""The schema of the system of record and its migrations (Alembic).

Every table lives on ``ingest.store.metadata``; the domain packages add theirs when
imported, which :func:`all_tables` does. A database is brought to the newest revision
by :func:`migrate`, which the ingest and the API call at start-up; a new revision is
written with ``medicobus db revision -m "what changes"`` after changing a table.
"""

from __future__ import annotations

from importlib import resources

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine


def all_tables() -> sa.MetaData:
    import ingest.domain_tables  # noqa: PLC0415  (cold chain, footprint, alerts)
    import ingest.punctuality.storage  # noqa: F401, PLC0415  (its tables join the metadata)
    from ingest.store import metadata  # noqa: PLC0415  (store imports this module)

    return metadata


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("ingest") / "migrations"))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


def migrate(engine: Engine) -> None:
    """Bring the database to the newest revision (creates it from empty)."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def new_revision(engine: Engine, message: str) -> None:
    """Write a migration for the difference between the tables and the database."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)
