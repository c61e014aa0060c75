"""The ``medicobus`` command line. Cloud parts are imported inside their commands so that
``medicobus agent`` runs with only the ``edge`` extra installed."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated

import typer

from firmware_config.loader import ConfigError
from medicobus.access_cli import tokens_app, users_app
from medicobus.cli_support import ConfigOption, fail
from simulators.cli import sim_app

app = typer.Typer(
    help="Médicobus telemetry: edge agent, ingest, API and simulators.", no_args_is_help=True
)
config_app = typer.Typer(help="Check configuration files.", no_args_is_help=True)
app.add_typer(config_app, name="config")
timetable_app = typer.Typer(
    help="Exchange the timetable with journey planners (GTFS).", no_args_is_help=True
)
app.add_typer(timetable_app, name="timetable")
bus_app = typer.Typer(help="A bus's broker credentials.", no_args_is_help=True)
app.add_typer(bus_app, name="bus")
app.add_typer(sim_app, name="sim")
db_app = typer.Typer(help="The system of record's schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(tokens_app, name="tokens")
app.add_typer(users_app, name="users")
follow_up_app = typer.Typer(help="The funder's yearly follow-up.", no_args_is_help=True)
app.add_typer(follow_up_app, name="follow-up")


def _logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _wait_for_signal() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="HTTP port of the API and dashboard")] = 8000,
    data_dir: Annotated[
        Path | None, typer.Option(help="keep the database here (default: a temporary folder)")
    ] = None,
    itinerary: Annotated[
        Path | None, typer.Option(help="fleet and timetable TOML (default: the bundled one)")
    ] = None,
    timetable_of: Annotated[
        str | None,
        typer.Option(
            help="run another weekday's timetable today (monday … sunday): a weekend demo "
            "can show a working day"
        ),
    ] = None,
    start_at: Annotated[
        str | None,
        typer.Option(
            help="start the demo's clock at this local time of today (HH:MM), then run at "
            "real speed: a demo at night can show the buses on their way"
        ),
    ] = None,
) -> None:
    """Run everything in one process: broker, simulated buses on today's timetable, agents,
    ingest, API."""
    from medicobus.demo import WEEKDAYS, run_demo

    _logging()
    weekday = None
    if timetable_of is not None:
        if timetable_of.strip().lower() not in WEEKDAYS:
            fail(
                ValueError(
                    f"--timetable-of: {timetable_of!r} is not a weekday ({', '.join(WEEKDAYS)})"
                )
            )
        weekday = WEEKDAYS.index(timetable_of.strip().lower()) + 1
    at = None
    if start_at is not None:
        try:
            at = time.fromisoformat(start_at.strip())
        except ValueError:
            fail(ValueError(f"--start-at: {start_at!r} is not a time of day (HH:MM)"))
    run_demo(port, data_dir, itinerary, weekday, start_at=at)


@app.command()
def agent(config: ConfigOption) -> None:
    """Run the edge agent of one bus."""
    from edge_agent.agent import Agent
    from edge_agent.outbox import OutboxError
    from firmware_config.agent import AgentConfig
    from firmware_config.loader import load_settings

    try:
        settings = load_settings(AgentConfig, config)
    except ConfigError as exc:
        fail(exc)
    _logging(settings.log_level)
    # The fridge reader counts and reports Modbus timeouts itself; pymodbus would log
    # an error line for each one.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    try:
        running = Agent(settings)
    except OutboxError as exc:
        fail(exc)
    running.start()
    _wait_for_signal()
    running.stop()


@app.command()
def ingest(config: ConfigOption) -> None:
    """Run the cloud ingest: subscribe, validate, de-duplicate, store."""
    from prometheus_client import start_http_server

    from firmware_config.loader import load_settings
    from ingest.bootstrap import IngestOptions, RunningIngest
    from ingest.domain import DomainConfigError
    from ingest.footprint.emissions import FactorFileError
    from ingest.itinerary import ItineraryError, load_itinerary
    from ingest.points import lines_of
    from ingest.punctuality.schedule import ScheduleError
    from ingest.settings import IngestSettings
    from ingest.store import Store
    from ingest.validation import Limits

    _logging()
    try:
        settings = load_settings(IngestSettings, config)
        itinerary = load_itinerary(settings.itinerary_file)
    except (ConfigError, ItineraryError) as exc:
        fail(exc)
    store = Store.open(
        settings.database_url,
        points=lines_of if settings.influx else None,
        background_checkpoints=True,
    )
    store.load_fleet(itinerary)
    options = IngestOptions(
        broker=settings.broker,
        domain=settings.domain(),
        punctuality=settings.punctuality,
        limits=Limits(
            max_future_skew=timedelta(seconds=settings.max_future_skew_s),
            max_age=timedelta(days=settings.max_age_days),
        ),
        past_days=int(settings.max_age_days),
        shared_group=settings.shared_group,
        influx=settings.influx,
        retention_days=settings.retention_days,
    )
    try:
        running = RunningIngest(store, itinerary, options)
    except (DomainConfigError, FactorFileError, ScheduleError) as exc:
        store.close()
        fail(exc)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, settings.metrics_host, running.metrics.registry)
    running.start()
    _wait_for_signal()
    running.stop()
    store.close()


@app.command()
def api(config: ConfigOption) -> None:
    """Serve the HTTP API and the dashboard."""
    import uvicorn

    from api.app import create_app
    from api.oidc import OidcProvider
    from api.routes.public import PublicLimits
    from api.settings import ApiSettings
    from firmware_config.loader import load_settings
    from ingest.points import lines_of
    from ingest.punctuality.figures import StoredVisitFigures
    from ingest.store import Store

    _logging()
    try:
        settings = load_settings(ApiSettings, config)
    except ConfigError as exc:
        fail(exc)
    store = Store.open(settings.database_url, points=lines_of if settings.timeseries else None)
    app = create_app(
        store,
        settings.users,
        visit_figures=StoredVisitFigures(store),
        live_interval_s=settings.live_interval_s,
        public_limits=PublicLimits(
            per_minute=settings.public_requests_per_minute,
            frame_ancestors=tuple(settings.public_frame_ancestors),
        ),
        max_body_bytes=settings.max_body_bytes,
        session_lifetime=timedelta(hours=settings.session_hours),
        secure_cookies=settings.secure_cookies,
        oidc=OidcProvider(settings.oidc) if settings.oidc else None,
    )
    # Open live streams never end by themselves: they get a few seconds, then are closed.
    uvicorn.run(app, host=settings.host, port=settings.port, timeout_graceful_shutdown=3)


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
        fail(exc)
    typer.echo(f"token (give it to {name}, it is not stored): {token}")
    typer.echo("add to api.toml:")
    typer.echo("[[users]]")
    for key, value in user.model_dump(exclude_none=True).items():
        typer.echo(f'{key} = "{value}"')


@bus_app.command("ca")
def bus_ca(
    ca_dir: Annotated[Path, typer.Option(help="the fleet's CA folder (made if missing)")],
    host: Annotated[
        list[str], typer.Option(help="a name or IP the buses reach the broker by (repeat)")
    ],
) -> None:
    """The fleet's certificate authority (kept if there is one), a new server certificate
    for the broker, and the CRL signed again (do it yearly: an expired CRL makes the
    broker refuse every bus certificate)."""
    from medicobus.certificates import CertificateError, make_authority

    try:
        written = make_authority(ca_dir, host)
    except CertificateError as exc:
        fail(exc)
    typer.echo(f"{ca_dir}: " + ", ".join(written))
    typer.echo("install ca.crt on every bus; keep ca.key on this machine only")


@bus_app.command("provision")
def bus_provision(
    vehicle: Annotated[str, typer.Argument(help="the vehicle id, also its broker username")],
    *,
    broker_url: Annotated[str, typer.Option(help="mqtts://host:port as the bus reaches it")],
    out: Annotated[Path, typer.Option(help="folder for the bus's agent.toml and ca.crt")],
    password_file: Annotated[
        Path | None, typer.Option(help="the broker's password_file: a password for the bus")
    ] = None,
    ca_dir: Annotated[
        Path | None,
        typer.Option(help="the fleet's CA folder: a client certificate instead of a password"),
    ] = None,
    ca: Annotated[
        Path | None, typer.Option(help="the CA certificate (default: the CA folder's ca.crt)")
    ] = None,
    ca_on_bus: Annotated[
        Path, typer.Option(help="where ca.crt will be installed on the bus")
    ] = Path("/etc/medicobus/ca.crt"),
) -> None:
    """New broker credentials for a bus (replacing its old password), a password or a
    client certificate, and its agent configuration carrying them."""
    from medicobus.provision import ProvisionError, provision_bus

    try:
        done = provision_bus(
            vehicle,
            password_file=password_file,
            broker_url=broker_url,
            ca_file=ca,
            out_dir=out,
            ca_on_bus=ca_on_bus,
            ca_dir=ca_dir,
        )
    except ProvisionError as exc:
        fail(exc)
    if ca_dir is not None:
        typer.echo(f"{vehicle}: client certificate issued by {ca_dir}")
        typer.echo(
            f"install on the bus: {done.agent_config}, {done.ca_file}, client.crt and "
            f"client.key (beside {ca_on_bus})"
        )
    else:
        typer.echo(f"{vehicle}: credentials written to {password_file}")
        typer.echo(f"install on the bus: {done.agent_config} and {done.ca_file} (as {ca_on_bus})")
        typer.echo("then reload the broker so that it reads its password file again")


@bus_app.command("revoke")
def bus_revoke(
    vehicle: Annotated[str, typer.Argument(help="the vehicle id")],
    password_file: Annotated[Path | None, typer.Option(help="the broker's password_file")] = None,
    ca_dir: Annotated[
        Path | None, typer.Option(help="the fleet's CA folder: its certificates go in the CRL")
    ] = None,
) -> None:
    """Remove a bus's password and revoke its certificates; the broker refuses them once
    reloaded."""
    from medicobus.provision import ProvisionError, revoke_bus

    try:
        done = revoke_bus(vehicle, password_file=password_file, ca_dir=ca_dir)
    except ProvisionError as exc:
        fail(exc)
    for line in done:
        typer.echo(f"{vehicle}: {line}")
    typer.echo("reload the broker to refuse them")


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
        fail(exc)
    typer.echo(f"{file}: valid configuration for vehicle {settings.vehicle}")


@timetable_app.command("export-gtfs")
def timetable_export_gtfs(
    itinerary: Annotated[Path, typer.Argument(help="the fleet and timetable TOML file")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="a folder, or a file ending in .zip")
    ],
    first: Annotated[
        str | None,
        typer.Option("--from", help="first day (YYYY-MM-DD; default: valid_from, else today)"),
    ] = None,
    last: Annotated[
        str | None,
        typer.Option("--until", help="last day (default: valid_until, else a year on)"),
    ] = None,
    agency_url: Annotated[
        str | None, typer.Option(help="web page for operators without a url in the file")
    ] = None,
) -> None:
    """Write the timetable as a GTFS static feed for journey planners."""
    from ingest.itinerary import ItineraryError, load_itinerary
    from ingest.punctuality.gtfs import GtfsError, export_gtfs, write_gtfs

    try:
        loaded = load_itinerary(itinerary)
        start = (
            date.fromisoformat(first)
            if first
            else loaded.calendar.valid_from or datetime.now(loaded.zone).date()
        )
        end = (
            date.fromisoformat(last)
            if last
            else loaded.calendar.valid_until or start + timedelta(days=365)
        )
        files = write_gtfs(export_gtfs(loaded, start, end, agency_url), output)
    except (ItineraryError, GtfsError, ValueError) as exc:
        fail(exc)
    typer.echo(f"{output}: {', '.join(files)} ({start} to {end})")


@timetable_app.command("import-gtfs")
def timetable_import_gtfs(
    feed: Annotated[Path, typer.Argument(help="a GTFS folder or .zip")],
    fleet: Annotated[
        Path,
        typer.Option(help="itinerary TOML whose operators and vehicles (route ids) to use"),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="the itinerary TOML to write")],
) -> None:
    """Read a GTFS static feed into an itinerary file: stops, weekly slots, validity and
    exceptions, for the vehicles of an existing fleet file."""
    from ingest.itinerary import ItineraryError, itinerary_toml, load_itinerary
    from ingest.punctuality.gtfs import GtfsError, import_gtfs, read_gtfs

    try:
        imported = import_gtfs(read_gtfs(feed), load_itinerary(fleet))
    except (ItineraryError, GtfsError) as exc:
        fail(exc)
    output.write_text(itinerary_toml(imported), encoding="utf-8")
    typer.echo(
        f"{output}: {len(imported.stops)} stops, {len(imported.slots)} weekly slots, "
        f"{len(imported.cancelled_days)} cancelled days, {len(imported.changes)} changes, "
        f"{len(imported.extra_visits)} extra visits"
    )


@follow_up_app.command("import")
def follow_up_import(
    config: ConfigOption,
    file: Annotated[Path, typer.Argument(help="CSV: vehicule;mois;profil;consultations")],
) -> None:
    """Import monthly consultations by profile from before the system (marked imported in
    the follow-up report). All or nothing; importing a month again replaces it."""
    from firmware_config.loader import load_settings
    from ingest.reports.configuration import load_configuration
    from ingest.services.common import RefusedError
    from ingest.services.follow_up import import_months
    from ingest.settings import IngestSettings
    from ingest.store import Store
    from protocol.clock import SystemClock

    try:
        settings = load_settings(IngestSettings, config)
        text = file.read_text(encoding="utf-8")
    except (ConfigError, OSError, UnicodeDecodeError) as exc:
        fail(exc)
    store = Store.open(settings.database_url)
    try:
        configuration = load_configuration(store)
        if configuration is None:
            fail(ValueError("the ingest has not recorded its settings yet: start it once"))
        assert configuration is not None
        months = import_months(store, configuration, text, file.name, SystemClock().now())
    except RefusedError as exc:
        fail(exc)
    finally:
        store.close()
    total = sum(m.consultations for m in months)
    typer.echo(f"{file.name}: {len(months)} line(s) imported, {total} consultations")


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption) -> None:
    """Bring the database of an ingest configuration to the newest schema."""
    from firmware_config.loader import load_settings
    from ingest.schema import migrate
    from ingest.settings import IngestSettings
    from ingest.store import create_engine

    try:
        settings = load_settings(IngestSettings, config)
    except ConfigError as exc:
        fail(exc)
    engine = create_engine(settings.database_url)
    migrate(engine)
    engine.dispose()
    typer.echo(f"{engine.url.render_as_string(hide_password=True)}: schema up to date")


@db_app.command("revision")
def db_revision(
    message: Annotated[str, typer.Option("--message", "-m", help="what the change is")],
) -> None:
    """Write a migration for tables changed in the code (compared with the newest one)."""
    import tempfile

    from ingest.schema import migrate, new_revision
    from ingest.store import create_engine

    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{tmp}/head.sqlite")
        migrate(engine)
        new_revision(engine, message)
        engine.dispose()
