"""What every command of ``medicobus`` shares: the settings-file option, the way a
command fails, who acts for the audit log, and the API's database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from firmware_config.loader import ConfigError

if TYPE_CHECKING:
    from ingest.store import Store

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="TOML settings file")]


def fail(exc: Exception | str) -> NoReturn:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=2)


@dataclass(frozen=True)
class CommandLine:
    """Who acts when a command is run on the server: for the audit log."""

    name: str = "medicobus"
    operator: str | None = None
    sees_all: bool = True
    role: str = "admin"
    address: str = "command line"

    def sees(self, operator: str) -> bool:
        return True


@contextmanager
def api_store(config: Path) -> Iterator[Store]:
    """The store of the API's database, from its settings file; closed after the block."""
    from api.settings import ApiSettings
    from firmware_config.loader import load_settings
    from ingest.store import Store

    try:
        settings = load_settings(ApiSettings, config)
    except ConfigError as exc:
        fail(exc)
    store = Store.open(settings.database_url)
    try:
        yield store
    finally:
        store.close()


def stamp(t: datetime) -> str:
    """A time as the commands print it."""
    return f"{t:%Y-%m-%d %H:%M}"
