"""``medicobus demo``: broker, simulated fleet, agents, ingest and API in one process."""

from __future__ import annotations

import logging
import socket
import tempfile
from contextlib import ExitStack
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import uvicorn

from api.app import create_app
from api.auth import ApiUser, Role, hash_token, new_token
from edge_agent.agent import Agent
from firmware_config.agent import AgentConfig, BrokerConfig, GpsPortConfig
from firmware_config.fridge import FridgePortConfig
from firmware_config.vedirect import VeDirectPortConfig
from ingest.domain import IngestDomain
from ingest.itinerary import load_itinerary
from ingest.local_days import local_date
from ingest.metrics import IngestMetrics
from ingest.pipeline import Ingestor
from ingest.punctuality.config import DetectorSettings, PunctualitySettings
from ingest.punctuality.figures import StoredVisitFigures
from ingest.punctuality.late_arrival import LateArrivals
from ingest.punctuality.tracker import PunctualityTracker
from ingest.settings import DomainSettings
from ingest.store import Store
from ingest.subscriber import IngestSubscriber
from medicobus.embedded_broker import EmbeddedBroker
from protocol.clock import ScaledClock
from simulators.fridge_device import FridgeSensorSimulator
from simulators.gps_device import GpsSimulator
from simulators.route import DriveRoute, weekly_tour
from simulators.vedirect_device import AuxiliaryPowerSystem, Bmv712Simulator

log = logging.getLogger(__name__)

DEMO_DWELL_S = 45.0


def demo_itinerary() -> Path:
    return Path(str(resources.files("simulators").joinpath("data/itineraries.toml")))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_demo(port: int, data_dir: Path | None, itinerary_file: Path | None, speed: float) -> None:
    with ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="medicobus-")))
        data_dir.mkdir(parents=True, exist_ok=True)
        itinerary = load_itinerary(itinerary_file or demo_itinerary())

        broker = EmbeddedBroker(port=free_port()).start()
        stack.callback(broker.stop)
        log.info("embedded MQTT broker on %s", broker.url)

        store = Store.open(f"sqlite:///{data_dir / 'medicobus.sqlite'}")
        stack.callback(store.close)
        store.load_fleet(itinerary)
        # The simulated buses stop for DEMO_DWELL_S only: a shorter dwell lets the demo show
        # their arrivals.
        metrics = IngestMetrics()
        punctuality = PunctualityTracker(
            store,
            itinerary,
            PunctualitySettings(detector=DetectorSettings(dwell_s=DEMO_DWELL_S * 2 / 3)),
            on_reconciled=metrics.count_reconciled,
        )
        punctuality.start(local_date(datetime.now(UTC), itinerary.zone), past_days=1)
        # Cold chain, daily records and alerts with their default settings, and late arrivals.
        domain = IngestDomain(
            store, itinerary, DomainSettings(), condition_sources=[LateArrivals(store)]
        )
        domain.start()
        stack.callback(domain.stop)
        subscriber = IngestSubscriber(
            Ingestor(store, observers=[punctuality, *domain.observers], metrics=metrics),
            BrokerConfig(url=broker.url, client_id="medicobus-ingest"),
        )
        metrics.track_backlog(lambda: subscriber.backlog)
        subscriber.start()
        stack.callback(subscriber.stop)

        clock = ScaledClock(datetime.now(UTC), speed)
        for i, vehicle in enumerate(itinerary.vehicles):
            route = DriveRoute(weekly_tour(itinerary, vehicle.id), dwell_s=DEMO_DWELL_S)
            # Start each bus a little way into its tour so it is moving at once.
            sim = GpsSimulator(route, clock, route_offset_s=20.0 + 7.0 * i)
            power = AuxiliaryPowerSystem(clock.now(), soc=0.85 - 0.1 * i, driving=True)
            bmv = Bmv712Simulator(power, clock, seed=i)
            fridge = FridgeSensorSimulator(clock, seed=i)
            for device in (sim, bmv, fridge):
                device.start()
                stack.callback(device.stop)
            agent = Agent(
                AgentConfig(
                    vehicle=vehicle.id,
                    state_dir=data_dir / "agents" / vehicle.id,
                    gps=GpsPortConfig(port=sim.path),
                    vedirect=[VeDirectPortConfig(port=bmv.path, device="bmv")],
                    fridge=FridgePortConfig.model_validate(
                        {
                            "port": fridge.path,
                            "sensors": [{"profile": "sht20-xy-md02"}, {"profile": "rs485-io-door"}],
                        }
                    ),
                    broker=BrokerConfig(url=broker.url),
                )
            )
            agent.start()
            stack.callback(agent.stop)
            log.info(
                "simulated %s: GPS on %s, battery monitor on %s, fridge sensors on %s",
                vehicle.id,
                sim.path,
                bmv.path,
                fridge.path,
            )

        users, tokens = demo_users([o.id for o in itinerary.operators])
        for name, token in tokens.items():
            log.info("API token of %s: %s", name, token)
        print(
            f"Dashboard: http://127.0.0.1:{port}/#token={tokens['admin']}  (Ctrl-C to stop)",
            flush=True,
        )
        app = create_app(
            store, users, metrics=metrics.registry, visit_figures=StoredVisitFigures(store)
        )
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


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
