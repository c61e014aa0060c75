"""``medicobus sim``: scenarios, recording and replay of serial devices, fleet load.

Heavy parts are imported inside their commands so ``medicobus --help`` stays quick.
"""

from __future__ import annotations

import signal
import tempfile
import threading
from datetime import date, datetime, time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from simulators.day_plan import DayPlan

sim_app = typer.Typer(
    help="Simulated buses: scenarios, recording and replay of devices, fleet load.",
    no_args_is_help=True,
)

ItineraryOption = Annotated[
    Path | None,
    typer.Option(help="fleet and timetable TOML (default: the bundled one)"),
]


def _fail(message: object) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _interrupt_event() -> threading.Event:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


def bundled_itinerary() -> Path:
    return Path(str(resources.files("simulators").joinpath("data/itineraries.toml")))


def _load_plan(scenario_name: str, itinerary_file: Path | None, on: date | None = None) -> DayPlan:
    from ingest.itinerary import ItineraryError, load_itinerary
    from simulators.day_plan import plan_day
    from simulators.scenario import ScenarioError, load_scenario, resolve_scenario

    try:
        scenario = load_scenario(resolve_scenario(scenario_name))
        if on is not None:
            scenario = scenario.on(on)
        itinerary = load_itinerary(itinerary_file or bundled_itinerary())
        return plan_day(scenario, itinerary)
    except (ScenarioError, ItineraryError) as exc:
        _fail(exc)


@sim_app.command("scenarios")
def scenarios() -> None:
    """List the bundled scenarios."""
    from simulators.scenario import ScenarioError, bundled_scenarios, load_scenario

    for name, path in bundled_scenarios().items():
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            _fail(exc)
        kinds = ", ".join(sorted({e.kind for e in scenario.events})) or "no incident"
        typer.echo(f"{name}: {scenario.description} [{kinds}]")


@sim_app.command("truth")
def truth(
    scenario: Annotated[str, typer.Argument(help="scenario file, or the name of a bundled one")],
    itinerary: ItineraryOption = None,
    on: Annotated[
        datetime | None, typer.Option("--date", formats=["%Y-%m-%d"], help="move the day")
    ] = None,
) -> None:
    """Print the scenario's ground truth (visits, zone intervals, rests) as JSON."""
    import json
    from dataclasses import asdict

    from simulators.truth import truth_of

    plan = _load_plan(scenario, itinerary, on.date() if on else None)

    def encode(value: object) -> str:
        return value.isoformat() if isinstance(value, datetime | date) else str(value)

    typer.echo(json.dumps(asdict(truth_of(plan)), default=encode, indent=2))


# Typer turns each parameter into an option: a command has as many as it has options.
@sim_app.command("run")
def run(  # noqa: PLR0917
    scenario: Annotated[str, typer.Argument(help="scenario file, or the name of a bundled one")],
    broker: Annotated[str, typer.Option(help="broker URL, e.g. mqtt://127.0.0.1:1883")],
    speed: Annotated[float, typer.Option(min=0.01, help="simulated time runs this fast")] = 1.0,
    state_dir: Annotated[
        Path | None, typer.Option(help="the agent's state (default: a temporary folder)")
    ] = None,
    itinerary: ItineraryOption = None,
    on: Annotated[
        datetime | None,
        typer.Option(
            "--date",
            formats=["%Y-%m-%d"],
            help="run the scenario on this date instead (its weekday's slots apply)",
        ),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="stop at this local time (HH:MM) instead of the day's end")
    ] = None,
    verbose: Annotated[bool, typer.Option(help="show the agent's log too")] = False,
) -> None:
    """Run a scenario's bus: devices, edge agent, broker; tells what happens.

    Simulated GPS, battery monitor, solar charger and fridge sensors on pseudo-terminals.
    """
    import logging

    from firmware_config.agent import BrokerConfig
    from simulators.scenario_run import ScenarioRun

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        BrokerConfig(url=broker)
    except ValueError as exc:
        _fail(f"--broker {broker!r}: {exc}")
    plan = _load_plan(scenario, itinerary, on.date() if on else None)
    stop_at = None
    if until is not None:
        try:
            local = time.fromisoformat(until)
        except ValueError:
            _fail(f"--until {until!r} is not a time like 09:30")
        stop_at = datetime.combine(plan.scenario.day.date, local, tzinfo=plan.itinerary.zone)
        if stop_at <= plan.start:
            _fail(f"--until {until} is before the scenario's start ({plan.scenario.day.start})")
    keep = state_dir or Path(tempfile.mkdtemp(prefix="medicobus-sim-"))
    interrupted = _interrupt_event()
    running = ScenarioRun(
        plan,
        broker,
        speed=speed,
        state_dir=keep,
        tell=typer.echo,
        until=stop_at,
    )
    try:
        running.start()
        running.wait(interrupted)
    finally:
        running.stop()


@sim_app.command("record")
def record(
    port: Annotated[str, typer.Argument(help="serial device, e.g. /dev/ttyACM0")],
    output: Annotated[Path, typer.Option("--output", "-o", help="recording file (JSON Lines)")],
    baudrate: Annotated[int, typer.Option(min=50)] = 9600,
    duration: Annotated[
        float | None, typer.Option(min=0.0, help="stop after this many seconds")
    ] = None,
) -> None:
    """Record what a device sends, with timing, until Ctrl-C (or --duration)."""
    import serial

    from simulators.recording import record_port

    interrupted = _interrupt_event()
    typer.echo(f"recording {port} at {baudrate} baud to {output} (Ctrl-C to stop)")
    try:
        with output.open("w", encoding="utf-8") as out:
            writer = record_port(port, baudrate, out, stop=interrupted, duration_s=duration)
    except (serial.SerialException, OSError) as exc:
        _fail(f"{port}: {exc}")
    typer.echo(f"recorded {writer.bytes} bytes in {writer.chunks} chunks to {output}")


@sim_app.command("replay")
def replay(
    recording: Annotated[Path, typer.Argument(help="a file written by `medicobus sim record`")],
    speed: Annotated[float, typer.Option(min=0.01, help="play this many times faster")] = 1.0,
    wait: Annotated[bool, typer.Option(help="start playing when a program opens the port")] = True,
) -> None:
    """Play a recording back on a pseudo-terminal, whose path is printed first."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from simulators.recording import RecordingError, read_recording, wait_for_reader
    from simulators.recording import replay as play
    from simulators.serial_port import VirtualSerialPort

    try:
        loaded = read_recording(recording)
    except RecordingError as exc:
        _fail(exc)
    interrupted = _interrupt_event()
    with VirtualSerialPort(hold_device_end=False) as port:
        typer.echo(port.path)
        typer.echo(
            f"replaying {recording} ({loaded.size} bytes, {loaded.duration_s:.1f} s recorded "
            f"from {loaded.header.port}) on {port.path} at x{speed:g}"
        )
        if wait:
            typer.echo(f"waiting for a program to open {port.path} (Ctrl-C to stop)")
            if not wait_for_reader(port, interrupted):
                raise typer.Exit(code=1)
        progress = Progress(
            TextColumn("[bold]replay"),
            BarColumn(),
            TextColumn("{task.completed:.1f}/{task.total:.1f} s recorded"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        with progress:
            task = progress.add_task("replay", total=max(loaded.duration_s, 0.001))
            written = play(
                loaded,
                port,
                speed=speed,
                stop=interrupted,
                on_chunk=lambda chunk: progress.update(task, completed=chunk.t),
            )
        typer.echo(f"replayed {written} bytes; {port.dropped_bytes} dropped")
        # Let the reader drain what is still in the pseudo-terminal's buffer.
        interrupted.wait(0.5)


@sim_app.command("fleet")
def fleet(  # noqa: PLR0917
    vehicles: Annotated[int, typer.Option(min=1, max=9999, help="how many vehicles")],
    broker: Annotated[str, typer.Option(help="broker URL, e.g. mqtt://127.0.0.1:1883")],
    duration: Annotated[float, typer.Option(min=0.1, help="seconds to run")],
    rate: Annotated[
        float, typer.Option(min=0.001, max=100, help="GPS samples per second per vehicle")
    ] = 1.0,
    batch_window: Annotated[
        float, typer.Option(min=0.05, max=60, help="seconds of samples per message")
    ] = 1.0,
    aux_period: Annotated[
        float, typer.Option(min=0.1, help="seconds between energy and fridge samples")
    ] = 10.0,
    connections: Annotated[
        int | None, typer.Option(min=1, help="MQTT connections shared by the vehicles")
    ] = None,
    seq_start: Annotated[
        int | None, typer.Option(min=0, help="first seq (default: from the current time)")
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="places the depots")] = 0,
    connect_timeout: Annotated[
        float, typer.Option(min=0.1, help="give up if the broker does not answer by then")
    ] = 10.0,
) -> None:
    """Publish protocol messages for N simulated vehicles straight to the broker."""
    from firmware_config.agent import BrokerConfig
    from simulators.fleet import FleetLoad

    try:
        config = BrokerConfig(url=broker, client_id=None)
    except ValueError as exc:
        _fail(f"--broker {broker!r}: {exc}")
    load = FleetLoad(
        vehicles,
        config,
        rate_hz=rate,
        batch_window_s=batch_window,
        aux_period_s=aux_period,
        connections=connections,
        seq_start=seq_start,
        seed=seed,
    )
    typer.echo(
        f"fleet of {vehicles} vehicles (fleet-0001…) to {broker} for {duration:g} s: "
        f"{rate:g} GPS samples/s each, one batch per stream every {batch_window:g} s"
    )
    try:
        summary = load.run(duration, _interrupt_event(), connect_timeout_s=connect_timeout)
    except ConnectionError as exc:
        _fail(exc)
    for stream, count in sorted(summary.by_stream.items()):
        typer.echo(f"  {stream}: {count} messages")
    typer.echo(summary.line())
    if summary.acknowledged < summary.messages:
        typer.echo(
            f"warning: {summary.messages - summary.acknowledged} messages not acknowledged",
            err=True,
        )
        raise typer.Exit(code=1)


@sim_app.command("fleet-itinerary")
def fleet_itinerary(
    vehicles: Annotated[int, typer.Argument(min=1, max=9999, help="how many vehicles")],
    output: Annotated[Path, typer.Option("--output", "-o", help="itinerary TOML to write")],
    seed: Annotated[int, typer.Option(min=0, help="must match the fleet's --seed")] = 0,
) -> None:
    """Write the itinerary of a load-test fleet, so an ingest knows its vehicles."""
    from simulators.fleet import fleet_itinerary_toml

    output.write_text(fleet_itinerary_toml(vehicles, seed), encoding="utf-8")
    typer.echo(f"wrote {vehicles} vehicles (fleet-0001…fleet-{vehicles:04d}) to {output}")
