"""Load generation: many simulated vehicles publishing straight to a broker (no serial).

Each vehicle ``fleet-0001``, ``fleet-0002``, … drives circles around its own depot in
Normandy and publishes what its agent would: GPS batches at ``rate_hz`` samples per
second, energy and fridge batches every ``aux_period_s``, a retained status when it
starts and stops; one batch per stream per ``batch_window_s``. Messages are the
protocol's own (models, codec, topics), QoS 1, with ``seq`` +1 per batch for each vehicle
and stream. Vehicles share ``connections`` MQTT connections so a thousand of them need
not mean a thousand threads. :func:`fleet_itinerary_toml` writes the itinerary an ingest
needs to know them.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from firmware_config.agent import BrokerConfig
from protocol.codec import encode
from protocol.models import (
    Batch,
    EnergyBatch,
    EnergySample,
    FridgeBatch,
    FridgeSample,
    GpsBatch,
    GpsSample,
    StatusBatch,
    StatusSample,
)
from protocol.topics import topic_for
from simulators.geo import offset

OPERATOR_ID: Final = "fleet"
# Depots are drawn in this box (rural Normandy).
AREA: Final = ((49.0, 49.9), (0.2, 1.8))
LOOP_RADIUS_M: Final = 2000.0
CRUISE_MPS: Final = 12.0
MAX_VEHICLES: Final = 9999


def fleet_vehicle_ids(count: int) -> list[str]:
    if not 1 <= count <= MAX_VEHICLES:
        raise ValueError(f"a fleet has 1 to {MAX_VEHICLES} vehicles, got {count}")
    return [f"fleet-{i:04d}" for i in range(1, count + 1)]


@dataclass(frozen=True)
class FleetVehicle:
    id: str
    depot_lat: float
    depot_lon: float
    phase: float  # where on its loop it starts, in radians

    def position(self, elapsed_s: float) -> tuple[float, float, float]:
        """Latitude, longitude and course after ``elapsed_s`` of driving its loop."""
        angle = self.phase + elapsed_s * CRUISE_MPS / LOOP_RADIUS_M
        lat, lon = offset(
            self.depot_lat,
            self.depot_lon,
            LOOP_RADIUS_M * math.sin(angle),
            LOOP_RADIUS_M * math.cos(angle),
        )
        # Counter-clockwise: the heading is perpendicular to the radius.
        course = math.degrees(math.atan2(-math.sin(angle), math.cos(angle))) % 360.0
        return lat, lon, course


def fleet_vehicles(count: int, seed: int = 0) -> list[FleetVehicle]:
    rng = random.Random(seed)
    (lat0, lat1), (lon0, lon1) = AREA
    return [
        FleetVehicle(
            vid, rng.uniform(lat0, lat1), rng.uniform(lon0, lon1), rng.uniform(0, 2 * math.pi)
        )
        for vid in fleet_vehicle_ids(count)
    ]


def _toml_str(value: str) -> str:
    # A JSON string of printable text is a valid TOML basic string.
    return json.dumps(value, ensure_ascii=False)


def fleet_itinerary_toml(count: int, seed: int = 0) -> str:
    """The itinerary of a load-test fleet: each vehicle with its depot and one village it
    visits every weekday morning."""
    lines = [
        "# Load-test fleet written by `medicobus sim fleet-itinerary`.",
        'timezone = "Europe/Paris"',
        "",
        "[[operator]]",
        f"id = {_toml_str(OPERATOR_ID)}",
        'name = "Load-test fleet"',
    ]
    for v in fleet_vehicles(count, seed):
        village_lat, village_lon = offset(v.depot_lat, v.depot_lon, LOOP_RADIUS_M, 0.0)
        lines += [
            "",
            "[[vehicle]]",
            f"id = {_toml_str(v.id)}",
            f"operator = {_toml_str(OPERATOR_ID)}",
            f"label = {_toml_str('Load-test ' + v.id)}",
            'traction = "diesel"',
            "fuel_l_per_100km = 10.5",
            "aux_battery_kwh = 5.1",
            f"depot = {_toml_str(v.id + '-depot')}",
        ]
        for suffix, lat, lon in (
            ("depot", v.depot_lat, v.depot_lon),
            ("village", village_lat, village_lon),
        ):
            lines += [
                "",
                "[[stop]]",
                f"id = {_toml_str(f'{v.id}-{suffix}')}",
                f"name = {_toml_str(f'{v.id} {suffix}')}",
                f"lat = {lat:.6f}",
                f"lon = {lon:.6f}",
                "radius_m = 150",
            ]
        for weekday in range(1, 6):
            lines += [
                "",
                "[[slot]]",
                f"vehicle = {_toml_str(v.id)}",
                f"weekday = {weekday}",
                f"stop = {_toml_str(v.id + '-village')}",
                'arrive = "09:00"',
                'depart = "12:00"',
            ]
    return "\n".join(lines) + "\n"


@dataclass
class FleetSummary:
    vehicles: int
    duration_s: float = 0.0
    messages: int = 0
    samples: int = 0
    acknowledged: int = 0
    by_stream: Counter[str] = field(default_factory=Counter)

    @property
    def message_rate(self) -> float:
        return self.messages / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def sample_rate(self) -> float:
        return self.samples / self.duration_s if self.duration_s > 0 else 0.0

    def line(self) -> str:
        return (
            f"vehicles={self.vehicles} duration_s={self.duration_s:.1f} "
            f"messages={self.messages} samples={self.samples} "
            f"acknowledged={self.acknowledged} msg_per_s={self.message_rate:.1f} "
            f"samples_per_s={self.sample_rate:.1f}"
        )


class _Connection:
    def __init__(self, broker: BrokerConfig, client_id: str) -> None:
        self.connected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        if broker.username is not None:
            self.client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            self.client.tls_set(ca_certs=str(broker.ca_file) if broker.ca_file else None)
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self._broker = broker

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        if not rc.is_failure:
            self.connected.set()

    def start(self) -> None:
        self.client.connect_async(self._broker.host, self._broker.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class _VehicleStreams:
    """One vehicle's sample schedule and sequence numbers."""

    def __init__(self, vehicle: FleetVehicle, start: datetime, seq_start: int, seed: int) -> None:
        self.vehicle = vehicle
        self.start = start
        self.seq: Counter[str] = Counter(
            {s: seq_start for s in ("gps", "energy", "fridge", "status")}
        )
        self.next_gps = start
        self.next_aux = start
        self.rng = random.Random(seed)

    def next_seq(self, stream: str) -> int:
        value = self.seq[stream]
        self.seq[stream] += 1
        return value

    def gps(self, until: datetime, period: timedelta) -> list[GpsSample]:
        samples = []
        while self.next_gps < until:
            t = self.next_gps
            lat, lon, course = self.vehicle.position((t - self.start).total_seconds())
            samples.append(
                GpsSample(
                    t=t,
                    lat=lat,
                    lon=lon,
                    alt_m=120.0,
                    speed_mps=CRUISE_MPS,
                    course_deg=course,
                    fix_mode=3,
                    sats=9,
                    hdop=0.9,
                )
            )
            self.next_gps += period
        return samples

    def aux(
        self, until: datetime, period: timedelta
    ) -> tuple[list[EnergySample], list[FridgeSample]]:
        energy, fridge = [], []
        while self.next_aux < until:
            t = self.next_aux
            hours = (t - self.start).total_seconds() / 3600
            energy.append(
                EnergySample(
                    t=t,
                    voltage_v=round(13.2 + self.rng.gauss(0, 0.01), 3),
                    current_a=round(12.0 + self.rng.gauss(0, 0.2), 2),
                    soc_pct=round(max(0.0, 80.0 - hours), 1),
                    source="bmv",
                )
            )
            fridge.append(
                FridgeSample(
                    t=t,
                    temp_c=round(5.0 + math.sin(hours * 6.0) + self.rng.gauss(0, 0.05), 2),
                    humidity_pct=45.0,
                    door_open=False,
                )
            )
            self.next_aux += period
        return energy, fridge


class FleetLoad:
    def __init__(
        self,
        count: int,
        broker: BrokerConfig,
        *,
        rate_hz: float = 1.0,
        batch_window_s: float = 1.0,
        aux_period_s: float = 10.0,
        connections: int | None = None,
        seq_start: int | None = None,
        seed: int = 0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if rate_hz <= 0 or batch_window_s <= 0 or aux_period_s <= 0:
            raise ValueError("rate, batch window and aux period must be positive")
        self.vehicles = fleet_vehicles(count, seed)
        self._broker = broker
        self._gps_period = timedelta(seconds=1.0 / rate_hz)
        self._aux_period = timedelta(seconds=aux_period_s)
        self._window = batch_window_s
        self._clock = clock
        # By default a new run's sequence numbers continue past any earlier run's, so an
        # ingest that de-duplicates on (vehicle, stream, seq) keeps every message.
        self._seq_start = seq_start if seq_start is not None else int(time.time() * 1000)
        self._seed = seed
        count_connections = connections or min(count, 16)
        tag = f"{os.getpid()}-{int(time.time())}"
        self._connections = [
            _Connection(broker, f"medicobus-fleet-{tag}-{k}") for k in range(count_connections)
        ]
        self._pending: list[mqtt.MQTTMessageInfo] = []

    def _publish(self, k: int, vehicle: str, batch: Batch, summary: FleetSummary) -> None:
        connection = self._connections[k % len(self._connections)]
        info = connection.client.publish(
            topic_for(vehicle, batch.stream), encode(batch), qos=1, retain=batch.stream == "status"
        )
        self._pending.append(info)
        summary.messages += 1
        summary.samples += len(batch.samples)
        summary.by_stream[batch.stream] += 1

    def _status(
        self, k: int, streams: _VehicleStreams, online: bool, summary: FleetSummary
    ) -> None:
        vid = streams.vehicle.id
        batch = StatusBatch(
            vehicle=vid,
            seq=streams.next_seq("status"),
            samples=[StatusSample(t=self._clock(), online=online)],
        )
        self._publish(k, vid, batch, summary)

    def run(
        self, duration_s: float, stop: threading.Event, connect_timeout_s: float = 10.0
    ) -> FleetSummary:
        summary = FleetSummary(vehicles=len(self.vehicles))
        for connection in self._connections:
            connection.start()
        try:
            deadline = time.monotonic() + connect_timeout_s
            for connection in self._connections:
                if not connection.connected.wait(max(0.0, deadline - time.monotonic())):
                    raise ConnectionError(f"could not connect to {self._broker.url}")
            start = self._clock()
            streams = [
                _VehicleStreams(v, start, self._seq_start, self._seed + i)
                for i, v in enumerate(self.vehicles)
            ]
            for k, s in enumerate(streams):
                self._status(k, s, True, summary)
            origin = time.monotonic()
            window = 1
            while not stop.is_set():
                due = origin + window * self._window
                if due - origin > duration_s + 1e-9:
                    break
                if stop.wait(max(0.0, due - time.monotonic())):
                    break
                until = start + timedelta(seconds=window * self._window)
                for k, s in enumerate(streams):
                    vid = s.vehicle.id
                    gps = s.gps(until, self._gps_period)
                    if gps:
                        self._publish(
                            k,
                            vid,
                            GpsBatch(vehicle=vid, seq=s.next_seq("gps"), samples=gps),
                            summary,
                        )
                    energy, fridge = s.aux(until, self._aux_period)
                    if energy:
                        batch_e = EnergyBatch(vehicle=vid, seq=s.next_seq("energy"), samples=energy)
                        self._publish(k, vid, batch_e, summary)
                        batch_f = FridgeBatch(vehicle=vid, seq=s.next_seq("fridge"), samples=fridge)
                        self._publish(k, vid, batch_f, summary)
                window += 1
            for k, s in enumerate(streams):
                self._status(k, s, False, summary)
            summary.duration_s = time.monotonic() - origin
            wait_until = time.monotonic() + 30.0
            for info in self._pending:
                if not info.is_published():
                    # A message that could not be sent is counted as unacknowledged below.
                    with contextlib.suppress(ValueError, RuntimeError):
                        info.wait_for_publish(timeout=max(0.0, wait_until - time.monotonic()))
            summary.acknowledged = sum(1 for info in self._pending if info.is_published())
        finally:
            for connection in self._connections:
                connection.stop()
        return summary
