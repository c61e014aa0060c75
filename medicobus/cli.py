"""The ``medicobus`` command line. Cloud parts are imported inside their commands so that
``medicobus agent`` runs with only the ``edge`` extra installed."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from firmware_config.loader import ConfigError

app = typer.Typer(
    help="Médicobus telemetry: edge agent, ingest, API and simulators.", no_args_is_help=True
)
config_app = typer.Typer(help="Check configuration files.", no_args_is_help=True)
app.add_typer(config_app, name="config")

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="TOML settings file")]


def _logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _wait_for_signal() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=2)


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="HTTP port of the API and dashboard")] = 8000,
    data_dir: Annotated[
        Path | None, typer.Option(help="keep the database here (default: a temporary folder)")
    ] = None,
    itinerary: Annotated[
        Path | None, typer.Option(help="fleet and timetable TOML (default: the bundled one)")
    ] = None,
    speed: Annotated[float, typer.Option(help="simulated time runs this many times faster")] = 1.0,
) -> None:
    """Run everything in one process: broker, simulated buses, agents, ingest, API."""
    from medicobus.demo import run_demo

    _logging()
    run_demo(port, data_dir, itinerary, speed)


@app.command()
def agent(config: ConfigOption) -> None:
    """Run the edge agent of one bus."""
    from edge_agent.agent import Agent
    from firmware_config.agent import AgentConfig
    from firmware_config.loader import load_settings

    try:
        settings = load_settings(AgentConfig, config)
    except ConfigError as exc:
        _fail(exc)
    _logging(settings.log_level)
    running = Agent(settings)
    running.start()
    _wait_for_signal()
    running.stop()


@app.command()
def ingest(config: ConfigOption) -> None:
    """Run the cloud ingest: subscribe, validate, de-duplicate, store."""
    from firmware_config.loader import load_settings
    from ingest.domain import DomainConfigError, IngestDomain
    from ingest.footprint.emissions import FactorFileError
    from ingest.itinerary import ItineraryError, load_itinerary
    from ingest.pipeline import Ingestor
    from ingest.settings import IngestSettings
    from ingest.store import Store
    from ingest.subscriber import IngestSubscriber
    from ingest.timeseries import TimeseriesForwarder
    from ingest.validation import Limits

    _logging()
    try:
        settings = load_settings(IngestSettings, config)
        itinerary = load_itinerary(settings.itinerary_file)
    except (ConfigError, ItineraryError) as exc:
        _fail(exc)
    store = Store.open(settings.database_url, timeseries=settings.influx is not None)
    store.load_fleet(itinerary)
    try:
        domain = IngestDomain(store, itinerary, settings.domain())
    except (DomainConfigError, FactorFileError) as exc:
        store.close()
        _fail(exc)
    limits = Limits(
        max_future_skew=timedelta(seconds=settings.max_future_skew_s),
        max_age=timedelta(days=settings.max_age_days),
    )
    subscriber = IngestSubscriber(
        Ingestor(store, limits, observers=domain.observers),
        settings.broker,
        shared_group=settings.shared_group,
    )
    forwarder = TimeseriesForwarder(store, settings.influx) if settings.influx else None
    if forwarder is not None:
        forwarder.start()
    domain.start()
    subscriber.start()
    _wait_for_signal()
    subscriber.stop()
    domain.stop()
    if forwarder is not None:
        forwarder.stop()
    store.close()


@app.command()
def api(config: ConfigOption) -> None:
    """Serve the HTTP API and the dashboard."""
    import uvicorn

    from api.app import create_app
    from api.settings import ApiSettings
    from firmware_config.loader import load_settings
    from ingest.store import Store

    _logging()
    try:
        settings = load_settings(ApiSettings, config)
    except ConfigError as exc:
        _fail(exc)
    store = Store.open(settings.database_url)
    if not settings.users:
        typer.echo("warning: no API users configured; every request will be refused", err=True)
    uvicorn.run(create_app(store, settings.users), host=settings.host, port=settings.port)


@app.command("new-token")
def new_token_command(
    name: Annotated[str, typer.Option(help="the person the token is for")],
    role: Annotated[str, typer.Option(help="fleet_manager, coordinator, engineer or admin")],
    operator: Annotated[str | None, typer.Option(help="their operator (all but admins)")] = None,
) -> None:
    """Make a personal API token; print it once, and the entry for the API's settings."""
    from api.auth import ApiUser, Role, hash_token, new_token

    try:
        token = new_token()
        user = ApiUser(
            name=name, role=Role(role), operator=operator, token_sha256=hash_token(token)
        )
    except ValueError as exc:
        _fail(exc)
    typer.echo(f"token (give it to {name}, it is not stored): {token}")
    typer.echo("add to api.toml:")
    typer.echo("[[users]]")
    for key, value in user.model_dump(exclude_none=True).items():
        typer.echo(f'{key} = "{value}"')


@config_app.command("validate")
def config_validate(
    file: Annotated[Path, typer.Argument(help="an agent configuration file")],
) -> None:
    """Check an agent configuration file; print what is wrong, field by field."""
    from firmware_config.agent import AgentConfig
    from firmware_config.loader import load_settings

    try:
        settings = load_settings(AgentConfig, file)
    except ConfigError as exc:
        _fail(exc)
    typer.echo(f"{file}: valid configuration for vehicle {settings.vehicle}")
