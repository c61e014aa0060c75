"""``medicobus demo``: broker, simulated fleet, agents, ingest and API in one process.

The buses follow today's timetable (the itinerary's visits of today's weekday, local
time). At start each bus's day so far is sent first, through its edge agent like any
fix, so the morning's visits are already detected and a coordinator can confirm them;
then the bus carries on from where the timetable puts it now, at real speed, arriving and
leaving at the visits' times. A bus with no visit today stays at its depot.
"""

from __future__ import annotations

import logging
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Final

import uvicorn
from fastapi import FastAPI

from api.app import create_app
from api.auth import ApiUser, Role, hash_token, new_token
from edge_agent.agent import Agent
from firmware_config.agent import AgentConfig, BrokerConfig, GpsPortConfig
from firmware_config.fridge import FridgePortConfig
from firmware_config.vedirect import VeDirectPortConfig
from ingest.bootstrap import IngestOptions, RunningIngest
from ingest.itinerary import Itinerary, Vehicle, load_itinerary
from ingest.local_days import local_date
from ingest.metrics import IngestMetrics
from ingest.punctuality.figures import StoredVisitFigures
from ingest.services import accounts
from ingest.services.common import ConflictError
from ingest.settings import DomainSettings
from ingest.store import Store
from medicobus.embedded_broker import EmbeddedBroker
from protocol.clock import ScaledClock, SystemClock
from protocol.models import GpsSample
from simulators.day_plan import DayPlan, plan_day
from simulators.fridge_device import FridgeSensorSimulator
from simulators.geo import offset
from simulators.gps_device import NmeaReceiverSimulator
from simulators.gps_track import GpsErrorModel, ScenarioGpsTrack
from simulators.nmea_out import Epoch
from simulators.scenario import Scenario, ScenarioError
from simulators.scenario_devices import build_devices
from simulators.scenario_run import agent_config
from simulators.vedirect_device import AuxiliaryPowerSystem, Bmv712Simulator

log = logging.getLogger(__name__)

# One fix a second, as the agent keeps them from its receiver.
BACKFILL_STEP_S: Final = 1.0
WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def demo_itinerary() -> Path:
    return Path(str(resources.files("simulators").joinpath("data/itineraries.toml")))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_timetable_of(itinerary: Itinerary, day: date, weekday: int) -> Itinerary:
    """The itinerary with ``day``'s weekday running the timetable of ``weekday`` (1 =
    Monday): a weekend demo can show a working day."""
    own = day.isoweekday()
    slots = [s for s in itinerary.slots if s.weekday != own] + [
        s.model_copy(update={"weekday": own}) for s in itinerary.slots if s.weekday == weekday
    ]
    return itinerary.model_copy(update={"slots": slots})


def todays_plan(itinerary: Itinerary, vehicle: str, day: date, seed: int) -> DayPlan | None:
    """The bus's day: depot, each visit of the day at its times, depot; None without
    visits that day."""
    scenario = Scenario.model_validate(
        {"name": f"demo-{vehicle}", "seed": seed, "vehicle": {"id": vehicle}, "day": {"date": day}}
    )
    try:
        return plan_day(scenario, itinerary)
    except ScenarioError as exc:
        if "has no visit" in str(exc):
            return None
        raise


def sample_of(epoch: Epoch) -> GpsSample:
    return GpsSample(
        t=epoch.t,
        lat=epoch.lat,
        lon=epoch.lon,
        alt_m=epoch.alt_m,
        speed_mps=round(epoch.speed_mps, 2),
        course_deg=round(epoch.course_deg, 1) % 360.0,
        fix_mode=3 if epoch.fix else 1,
        sats=epoch.sats,
        hdop=epoch.hdop,
    )


def day_so_far(
    plan: DayPlan,
    now: datetime,
    after: datetime | None = None,
    step_s: float = BACKFILL_STEP_S,
) -> list[GpsSample]:
    """The fixes the bus's receiver gave from the start of its day (or after ``after``,
    what the store already has) until ``now``: the same ones the live receiver gives for
    those times."""
    track = ScenarioGpsTrack(plan)
    samples: list[GpsSample] = []
    t = plan.start
    if after is not None and after >= t:
        t += timedelta(seconds=((after - t).total_seconds() // step_s + 1) * step_s)
    until = min(now, plan.end)
    while t < until:
        epoch = track.epoch_at(t)
        if epoch.fix:
            samples.append(sample_of(epoch))
        t += timedelta(seconds=step_s)
    return samples


class ParkedReceiver:
    """Epochs of a receiver parked at one place: its error wanders a few metres."""

    def __init__(self, lat: float, lon: float, origin: datetime, seed: int) -> None:
        self._lat, self._lon, self._origin = lat, lon, origin
        self._errors = GpsErrorModel(seed, 2.5, 30.0)

    def epoch_at(self, t: datetime) -> Epoch:
        north, east = self._errors.at(max(0.0, (t - self._origin).total_seconds()))
        lat, lon = offset(self._lat, self._lon, north, east)
        return Epoch(t, lat, lon, 0.0, 0.0)


@dataclass
class DemoBus:
    vehicle: Vehicle
    plan: DayPlan | None
    agent: Agent
    backfilled: int


def start_bus(
    stack: ExitStack,
    *,
    itinerary: Itinerary,
    vehicle: Vehicle,
    seed: int,
    broker_url: str,
    state_dir: Path,
    clock: ScaledClock,
    stored_until: datetime | None = None,
) -> DemoBus:
    """``stored_until``: the newest fix of the bus the store holds (a demo started again
    with the same data folder sends only what came after)."""
    now = clock.now()
    day = local_date(now, itinerary.zone)
    plan = todays_plan(itinerary, vehicle.id, day, seed)
    if plan is None:
        log.warning(
            "%s has no visit on %s (%s): it stays at its depot, %s",
            vehicle.id,
            day,
            WEEKDAYS[day.isoweekday() - 1],
            vehicle.depot,
        )
        depot = itinerary.stop(vehicle.depot)
        gps = NmeaReceiverSimulator(ParkedReceiver(depot.lat, depot.lon, now, seed), clock)
        power = AuxiliaryPowerSystem(now, soc=0.85 - 0.1 * seed, driving=False)
        bmv = Bmv712Simulator(power, clock, seed=seed)
        fridge = FridgeSensorSimulator(clock, seed=seed)
        for device in (gps, bmv, fridge):
            device.start()
            stack.callback(device.stop)
        config = AgentConfig(
            vehicle=vehicle.id,
            state_dir=state_dir,
            gps=GpsPortConfig(port=gps.path),
            vedirect=[VeDirectPortConfig(port=bmv.path, device="bmv")],
            fridge=FridgePortConfig.model_validate(
                {
                    "port": fridge.path,
                    "sensors": [{"profile": "sht20-xy-md02"}, {"profile": "rs485-io-door"}],
                }
            ),
            broker=BrokerConfig(url=broker_url, client_id=f"medicobus-demo-{vehicle.id}"),
        )
        agent = Agent(config, clock=clock)
        agent.start()
        stack.callback(agent.stop)
        return DemoBus(vehicle, None, agent, 0)

    visits = ", ".join(
        f"{v.stop.name} {plan.local(v.scheduled_arrival_s):%H:%M}–"
        f"{plan.local(v.scheduled_departure_s):%H:%M}"
        for v in plan.visits
    )
    devices = build_devices(plan, clock)
    agent = Agent(agent_config(plan, devices, broker_url, state_dir, 1.0), clock=clock)
    # The day so far first, through the agent's outbox like any fix; then the receiver.
    backfill = day_so_far(plan, now, stored_until)
    for sample in backfill:
        agent.record(sample)
    devices.start()
    stack.callback(devices.stop)
    agent.start()
    stack.callback(agent.stop)
    log.info(
        "%s follows its timetable of %s: %s; %d fixes of the day so far sent first",
        vehicle.id,
        day,
        visits,
        len(backfill),
    )
    return DemoBus(vehicle, plan, agent, len(backfill))


@dataclass
class RunningDemo:
    store: Store
    itinerary: Itinerary
    metrics: IngestMetrics
    buses: list[DemoBus]
    broker_url: str

    def app(self, users: list[ApiUser], clock: ScaledClock | None = None) -> FastAPI:
        return create_app(
            self.store,
            users,
            metrics=self.metrics.registry,
            visit_figures=StoredVisitFigures(self.store, clock),
            clock=clock,
        )


@contextmanager
def running_demo(
    data_dir: Path,
    itinerary: Itinerary,
    clock: ScaledClock,
    broker_url: str | None = None,
) -> Iterator[RunningDemo]:
    """The ingest (SQLite in ``data_dir``) and the simulated buses on today's timetable,
    on ``broker_url`` or an embedded broker; ``clock`` is the demo's time (now, at real
    speed, unless a test fixes it)."""
    with ExitStack() as stack:
        if broker_url is None:
            broker = EmbeddedBroker(port=free_port()).start()
            stack.callback(broker.stop)
            broker_url = broker.url
            log.info("embedded MQTT broker on %s", broker_url)
        store = Store.open(
            f"sqlite:///{data_dir / 'medicobus.sqlite'}", background_checkpoints=True
        )
        stack.callback(store.close)
        store.load_fleet(itinerary)
        # Cold chain, daily records and alerts with their default settings, late arrivals,
        # and the visits of yesterday and today.
        ingest = RunningIngest(
            store,
            itinerary,
            IngestOptions(
                broker=BrokerConfig(url=broker_url, client_id="medicobus-ingest"),
                domain=DomainSettings(),
                past_days=1,
            ),
            clock,
        )
        metrics = ingest.metrics
        ingest.start()
        stack.callback(ingest.stop)
        stored = {p.vehicle: p.t for p in store.positions()}
        buses = [
            start_bus(
                stack,
                itinerary=itinerary,
                vehicle=vehicle,
                seed=i,
                broker_url=broker_url,
                state_dir=data_dir / "agents" / vehicle.id,
                clock=clock,
                stored_until=stored.get(vehicle.id),
            )
            for i, vehicle in enumerate(itinerary.vehicles)
        ]
        yield RunningDemo(store, itinerary, metrics, buses, broker_url)


def run_demo(
    port: int,
    data_dir: Path | None,
    itinerary_file: Path | None,
    timetable_of: int | None = None,
    start_at: time | None = None,
) -> None:
    with ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="medicobus-")))
        data_dir.mkdir(parents=True, exist_ok=True)
        itinerary = load_itinerary(itinerary_file or demo_itinerary())
        now = SystemClock().now()
        if start_at is not None:
            today = local_date(now, itinerary.zone)
            now = datetime.combine(today, start_at, itinerary.zone)
            log.info("the demo's clock starts at %s", now.isoformat())
        clock = ScaledClock(now, 1.0)
        if timetable_of is not None:
            today = local_date(clock.now(), itinerary.zone)
            itinerary = with_timetable_of(itinerary, today, timetable_of)
            log.info("today (%s) runs the timetable of %s", today, WEEKDAYS[timetable_of - 1])
        demo = stack.enter_context(running_demo(data_dir, itinerary, clock))
        users, tokens = demo_users([o.id for o in itinerary.operators])
        for operator in itinerary.operators:
            say(f"Public page: http://127.0.0.1:{port}/public/{operator.id}")
        say(f"Dashboard: http://127.0.0.1:{port}/  (Ctrl-C to stop)")
        say("Sign in with one of these (e-mail, password, role):")
        for email, password, role in demo_accounts(demo.store, itinerary, clock.now()):
            say(f"  {email}  {password}  ({role})")
        say(f"API token for scripts (admin): {tokens['admin']}")
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        # Open live streams never end by themselves: they get a few seconds, then are closed.
        uvicorn.run(
            demo.app(users, clock),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=3,
        )


def say(line: str) -> None:
    """One line for the person running the demo, written whole: ``print`` writes the text
    and its newline apart, and a log line from another thread (the buses, the ingest) can
    land between them when both go to one terminal or pipe."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def demo_accounts(store: Store, itinerary: Itinerary, now: datetime) -> list[tuple[str, str, str]]:
    """Accounts with fresh random passwords: an admin, and a fleet manager and a
    coordinator per operator."""
    people: list[tuple[str, str, str, str | None]] = [
        ("admin@medicobus.demo", "Admin", "admin", None)
    ]
    for operator in itinerary.operators:
        people.append(
            (f"flotte@{operator.id}.demo", f"Flotte {operator.id}", "fleet_manager", operator.id)
        )
        people.append(
            (
                f"coordination@{operator.id}.demo",
                f"Coordination {operator.id}",
                "coordinator",
                operator.id,
            )
        )
    made = []
    for email, name, role, operator_id in people:
        password = accounts.new_password()
        try:
            accounts.add(
                store,
                _DEMO,
                email=email,
                name=name,
                role=role,
                operator=operator_id,
                password=password,
                now=now,
            )
        except ConflictError:
            # A demo started again on the same data: the account gets a new password.
            accounts.reset(store, _DEMO, email, password, now)
        made.append((email, password, role))
    return made


@dataclass(frozen=True)
class _Demo:
    """Who makes the demo's accounts, for the audit log."""

    name: str = "demo"
    operator: str | None = None
    sees_all: bool = True

    def sees(self, operator: str) -> bool:
        return True


_DEMO = _Demo()


def demo_users(operators: list[str]) -> tuple[list[ApiUser], dict[str, str]]:
    """Fresh random tokens for an admin, and a fleet manager and a coordinator per operator."""
    people: list[tuple[str, Role, str | None]] = [("admin", Role.ADMIN, None)]
    for operator in operators:
        people.append((f"fleet-manager@{operator}", Role.FLEET_MANAGER, operator))
        people.append((f"coordinator@{operator}", Role.COORDINATOR, operator))
    people.append(("engineer", Role.ENGINEER, operators[0] if operators else None))
    tokens = {name: new_token() for name, _, _ in people}
    users = [
        ApiUser(name=name, role=role, operator=operator, token_sha256=hash_token(tokens[name]))
        for name, role, operator in people
    ]
    return users, tokens
