"""Scenario files, the day's plan and its ground truth, and what the simulated devices
say about it (checked with the agent's own parsers)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import cache
from itertools import pairwise
from pathlib import Path

import pytest
from pymodbus.client import ModbusSerialClient

from edge_agent.counters import DeviceCounters
from edge_agent.nmea import EpochAssembler, NmeaFramer, parse_sentence
from edge_agent.vedirect import BatteryMonitorReading, VeDirectFramer, decode_block
from ingest.itinerary import Itinerary
from protocol.clock import ScaledClock
from protocol.models import GpsSample
from simulators.day_plan import DayPlan, Driving, Parked, plan_day
from simulators.fridge_device import FridgeSensorSimulator
from simulators.geo import haversine_m
from simulators.gps_track import ScenarioGpsTrack
from simulators.nmea_out import epoch_sentences
from simulators.roads import KMH, ROAD_SPEED_KMH
from simulators.scenario import (
    Scenario,
    ScenarioError,
    bundled_scenarios,
    load_scenario,
    parse_scenario,
)
from simulators.scenario_devices import fridge_model, power_system
from simulators.truth import scenario_truth, truth_of
from simulators.vedirect_device import Bmv712Simulator
from tests.support.wait import wait_for

EVENT_KINDS = {
    "late_departure",
    "traffic_jam",
    "stop_skipped",
    "drive_by",
    "traffic_light",
    "fridge_failure",
    "gps_outage",
    "network_loss",
    "low_battery",
}


@cache
def bundled(name: str) -> Scenario:
    return load_scenario(bundled_scenarios()[name])


_plans: dict[tuple[str, int], DayPlan] = {}


def plan_of(name: str, itinerary: Itinerary, seed: int | None = None) -> DayPlan:
    scenario = bundled(name)
    if seed is not None:
        scenario = scenario.model_copy(update={"seed": seed})
    key = (name, scenario.seed)
    if key not in _plans:
        _plans[key] = plan_day(scenario, itinerary)
    return _plans[key]


def gps_fixes(
    plan: DayPlan, start_s: float, end_s: float
) -> tuple[list[GpsSample], DeviceCounters]:
    """What the agent's NMEA parser makes of the receiver's epochs over that interval."""
    track = ScenarioGpsTrack(plan)
    counters = DeviceCounters()
    framer, assembler = NmeaFramer(counters), EpochAssembler(counters)
    fixes = []
    for t_s in range(int(start_s), int(end_s)):
        data = b"".join(epoch_sentences(track.epoch_at(plan.time_of(t_s))))
        for sentence in framer.feed(data):
            msg = parse_sentence(sentence, counters)
            if msg is not None and (fix := assembler.feed(msg)) is not None:
                fixes.append(fix)
        if (fix := assembler.flush()) is not None:
            fixes.append(fix)
    return fixes, counters


def at_local(plan: DayPlan, hhmm: str) -> float:
    local = datetime.combine(
        plan.scenario.day.date, datetime.strptime(hhmm, "%H:%M").time(), plan.itinerary.zone
    )
    return plan.seconds_of(local)


# Files and validation.


def test_at_least_eight_bundled_scenarios_cover_every_event_kind(itinerary: Itinerary) -> None:
    scenarios = bundled_scenarios()
    assert len(scenarios) >= 8
    kinds = {e.kind for name in scenarios for e in bundled(name).events}
    assert kinds == EVENT_KINDS
    for name in scenarios:
        truth = scenario_truth(bundled(name), itinerary)
        assert truth.scenario == name
        assert truth.visits, name


def test_a_bad_scenario_file_names_the_file_and_the_fields(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'seed = -1\n[vehicle]\nid = "Vexin 01"\nbattery_soc = 2\n'
        '[day]\ndate = 2026-11-16\nstart = "09:00"\nend = "08:00"\n'
        '[[event]]\nkind = "meteor"\n'
        '[[event]]\nkind = "traffic_jam"\nat = "25:00"\nduration_min = 5\n'
    )
    with pytest.raises(ScenarioError) as caught:
        load_scenario(bad)
    message = str(caught.value)
    assert message.startswith(str(bad))
    for field in ("seed", "vehicle.id", "vehicle.battery_soc", "day", "event.0", "event.1"):
        assert f"{field}" in message, field
    broken = tmp_path / "broken.toml"
    broken.write_text("seed = \n")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(broken)
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "absent.toml")
    with pytest.raises(ScenarioError, match=r"vehicle\.colour: Extra inputs"):
        parse_scenario(
            {"vehicle": {"id": "vexin-01", "colour": "red"}, "day": {"date": "2026-11-16"}},
            "inline",
            "inline",
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"vehicle": {"id": "nobody"}}, "vehicle.id: no vehicle 'nobody'"),
        ({"day": {"date": "2026-11-21"}}, "day.date: vexin-01 has no visit on Saturday"),
        ({"event": [{"kind": "stop_skipped", "stop": "morgny"}]}, "event.0 (stop_skipped)"),
        (
            {"event": [{"kind": "drive_by", "stop": "bezu-saint-eloi", "on_way_to": "morgny"}]},
            "on_way_to 'morgny'",
        ),
        ({"event": [{"kind": "traffic_light", "stop": "nowhere"}]}, "no stop 'nowhere'"),
        (
            {"event": [{"kind": "gps_outage", "at": "06:00", "duration_min": 5}]},
            "outside the day",
        ),
        ({"event": [{"kind": "late_departure", "place": "morgny", "delay_min": 5}]}, "morgny"),
    ],
)
def test_events_that_do_not_fit_the_day_are_refused(
    itinerary: Itinerary, change: dict[str, object], message: str
) -> None:
    raw: dict[str, object] = {
        "vehicle": {"id": "vexin-01"},
        "day": {"date": "2026-11-16"},
        **change,
    }
    scenario = parse_scenario(raw, "inline", "inline")
    with pytest.raises(ScenarioError, match=re.escape(message)):
        plan_day(scenario, itinerary)


# The day's motion and its truth.


def test_the_plan_and_the_receiver_are_deterministic_for_a_seed(itinerary: Itinerary) -> None:
    a = plan_of("vexin-monday-on-time", itinerary)
    b = plan_day(bundled("vexin-monday-on-time"), itinerary)
    assert truth_of(a) == truth_of(b)
    t = a.time_of(at_local(a, "08:50"))
    times = [t + timedelta(seconds=s) for s in range(0, 120, 7)]
    first = [ScenarioGpsTrack(a).epoch_at(x) for x in times]
    # Asked in another order, the receiver says the same.
    other = ScenarioGpsTrack(b)
    assert [other.epoch_at(x) for x in reversed(times)][::-1] == first
    reseeded = plan_of("vexin-monday-on-time", itinerary, seed=99)
    assert [ScenarioGpsTrack(reseeded).epoch_at(x) for x in times] != first


def test_the_bus_drives_plausibly(itinerary: Itinerary) -> None:
    plan = plan_of("vexin-monday-on-time", itinerary)
    drives = [p for p in plan.phases if isinstance(p, Driving)]
    assert len(drives) == 3  # depot → Vesly → Hacqueville → depot
    for d in drives:
        traj, road = d.trajectory, d.road
        top = max(traj.speeds)
        assert top <= ROAD_SPEED_KMH["departmental"] * KMH + 1e-6
        assert top > 60 * KMH  # it does get onto the open road
        for s, v in zip(traj.distances, traj.speeds, strict=True):
            assert v <= road.limit_at(s) + 1e-6
        dv = [abs(b - a) / 0.5 for a, b in zip(traj.speeds, traj.speeds[1:], strict=False)]
        assert max(dv) <= 1.2 + 1e-6  # never harder than the driver's braking
        # Through the village at either end it drives at village speeds.
        assert all(
            v <= 50 * KMH + 1e-6
            for s, v in zip(traj.distances, traj.speeds, strict=True)
            if s < 850
        )
        assert road.bends
    # The roads bend, and the sharper bends are taken slower than cruising.
    slowest = min(b.speed_mps for d in drives for b in d.road.bends)
    assert slowest < 60 * KMH
    # Parked at the depot until it leaves, then on time at every stop.
    assert isinstance(plan.phases[0], Parked)
    assert plan.motion_at(60).speed_mps == 0.0
    for visit in truth_of(plan).visits:
        assert visit.outcome == "visited"
        assert visit.delay_s is not None and -5 * 60 <= visit.delay_s <= 0
        assert visit.departure is not None and visit.departure >= visit.scheduled_departure


def test_the_bus_rests_inside_the_zone_during_a_visit(itinerary: Itinerary) -> None:
    plan = plan_of("vexin-monday-on-time", itinerary)
    vesly = itinerary.stop("vesly")
    visit = truth_of(plan).visits[0]
    assert visit.stop == "vesly" and visit.arrival is not None
    start = plan.seconds_of(visit.arrival) + 5
    fixes, counters = gps_fixes(plan, start, start + 900)
    assert len(fixes) == 900 and counters.get("nmea_bad_checksum") == 0
    for fix in fixes:
        assert haversine_m(fix.lat, fix.lon, vesly.lat, vesly.lon) < vesly.radius_m / 2
        assert fix.speed_mps is not None and fix.speed_mps < 0.5
    # The parked fixes drift by a few metres, they do not sit on one point.
    spread = max(haversine_m(f.lat, f.lon, vesly.lat, vesly.lon) for f in fixes)
    assert 1.0 < spread < 20.0


def test_late_departure_makes_the_first_stop_late(itinerary: Itinerary) -> None:
    on_time = truth_of(plan_of("vexin-monday-on-time", itinerary)).visits[0]
    late = truth_of(plan_of("vexin-late-departure", itinerary)).visits[0]
    assert late.delay_s is not None and on_time.delay_s is not None
    assert late.delay_s - on_time.delay_s == pytest.approx(25 * 60, abs=5)
    assert late.delay_s > 15 * 60


def test_a_traffic_jam_slows_the_bus_and_makes_it_late(itinerary: Itinerary) -> None:
    plan = plan_of("caux-traffic-jam", itinerary)
    jam_start, jam_end = at_local(plan, "08:15"), at_local(plan, "08:35")
    drive = next(p for p in plan.phases if isinstance(p, Driving))
    in_jam = [
        v
        for t, v in zip(drive.trajectory.times, drive.trajectory.speeds, strict=True)
        if jam_start + 30 <= t < jam_end
    ]
    assert in_jam and max(in_jam) <= 8 * KMH + 1e-6
    first = truth_of(plan).visits[0]
    assert first.delay_s is not None and first.delay_s > 5 * 60


def test_a_skipped_stop_is_never_visited(itinerary: Itinerary) -> None:
    truth = truth_of(plan_of("vexin-stop-skipped", itinerary))
    hebecourt = next(v for v in truth.visits if v.stop == "hebecourt")
    assert hebecourt.outcome == "skipped" and hebecourt.arrival is None
    assert all(z.longest_rest_s == 0 for z in truth.intervals_at("hebecourt"))
    morgny = next(v for v in truth.visits if v.stop == "morgny")
    assert morgny.outcome == "visited"


def test_a_drive_by_crosses_the_zone_without_resting(itinerary: Itinerary) -> None:
    plan = plan_of("vexin-drive-by", itinerary)
    truth = truth_of(plan)
    (passage,) = truth.intervals_at("bezu-saint-eloi")
    assert passage.left is not None and passage.longest_rest_s == 0.0
    crossing_s = (passage.left - passage.entered).total_seconds()
    assert 10 < crossing_s < 120
    bezu = itinerary.stop("bezu-saint-eloi")
    fixes, _ = gps_fixes(
        plan, plan.seconds_of(passage.entered) - 5, plan.seconds_of(passage.left) + 5
    )
    assert any(haversine_m(f.lat, f.lon, bezu.lat, bezu.lon) < bezu.radius_m / 2 for f in fixes)
    assert all(f.speed_mps is not None and f.speed_mps > 2.0 for f in fixes)
    assert not [r for r in truth.rests if r.stop == "bezu-saint-eloi"]


def test_a_red_light_at_the_zone_edge_is_a_short_rest(itinerary: Itinerary) -> None:
    plan = plan_of("vexin-traffic-light", itinerary)
    truth = truth_of(plan)
    hebecourt = itinerary.stop("hebecourt")
    short = [r for r in truth.rests if r.duration_s < 60]
    assert len(short) == 1
    (light,) = short
    assert light.duration_s == pytest.approx(45)
    assert light.stop == "hebecourt"
    assert hebecourt.radius_m - 15 < light.from_centre_m <= hebecourt.radius_m
    visit = next(v for v in truth.visits if v.stop == "hebecourt")
    assert visit.arrival is not None and visit.arrival > light.end
    # The receiver shows the bus standing at the light.
    start = plan.seconds_of(light.start)
    fixes, _ = gps_fixes(plan, start + 2, start + 40)
    assert all(f.speed_mps is not None and f.speed_mps < 0.5 for f in fixes)


def test_a_gps_outage_gives_epochs_without_a_fix(itinerary: Itinerary) -> None:
    plan = plan_of("vexin-gps-outage", itinerary)
    start = at_local(plan, "13:10")
    fixes, counters = gps_fixes(plan, start - 60, start + 12 * 60 + 60)
    assert counters.get("gps_no_fix") == 12 * 60
    assert len(fixes) == 120
    assert counters.get("nmea_bad_checksum") == 0
    assert max(f.t for f in fixes if f.t < plan.time_of(start + 60)) < plan.time_of(start)


# Battery and fridge follow the day.


def test_driving_charges_the_battery_and_the_bmv_blocks_verify(itinerary: Itinerary) -> None:
    plan = plan_of("vexin-monday-on-time", itinerary)
    drive = next(p for p in plan.phases if isinstance(p, Driving))
    power = power_system(plan)
    before = power.advance_to(plan.time_of(drive.start_s)).soc
    bmv = Bmv712Simulator(power, ScaledClock(plan.start), seed=1, hex_frame_probability=0.5)
    counters = DeviceCounters()
    framer = VeDirectFramer(counters)
    readings = []
    for t_s in range(int(drive.start_s) + 10, int(drive.end_s)):
        for block in framer.feed(bmv.output_at(plan.time_of(t_s))):
            reading = decode_block(block, counters)
            if isinstance(reading, BatteryMonitorReading):
                readings.append(reading)
    assert power.state.soc > before
    assert len(readings) == int(drive.end_s) - int(drive.start_s) - 10
    assert counters.get("vedirect_bad_checksum") == 0
    assert all(r.current_a is not None and r.current_a > 0 for r in readings)
    # Parked during consultations, the surgery draws from the battery.
    power.advance_to(plan.time_of(drive.end_s + 3600))
    assert power.state.battery_current_a < 0


def test_low_battery_raises_the_bmv_alarm_after_the_event(itinerary: Itinerary) -> None:
    plan = plan_of("vexin-low-battery", itinerary)
    event_s = at_local(plan, "09:30")
    bmv = Bmv712Simulator(power_system(plan), ScaledClock(plan.start), seed=2)

    def reading(t_s: float) -> BatteryMonitorReading:
        counters = DeviceCounters()
        (block, *_) = VeDirectFramer(counters).feed(bmv.output_at(plan.time_of(t_s)))
        decoded = decode_block(block, counters)
        assert isinstance(decoded, BatteryMonitorReading)
        return decoded

    early = reading(event_s - 60)
    assert early.alarm is False and early.soc_pct is not None and early.soc_pct > 20
    late = reading(event_s + 90 * 60)
    assert late.alarm is True and late.alarm_reason is not None and late.alarm_reason & 4
    assert late.soc_pct is not None and late.soc_pct < 20


def test_the_fridge_passes_8_degrees_after_the_failure_only(itinerary: Itinerary) -> None:
    plan = plan_of("caux-fridge-failure", itinerary)
    failure, repair = at_local(plan, "10:15"), at_local(plan, "15:00")
    model = fridge_model(plan)
    states = [model.advance_to(t) for t in range(1, int(plan.end_s))]
    first_warm = next(s.elapsed_s for s in states if s.air_c > 8.0)
    assert failure < first_warm < failure + 20 * 60
    assert max(s.air_c for s in states if s.elapsed_s < failure) < 8.0
    assert states[int(repair) - 2].air_c > 15.0  # hours without cooling in a hot cabin
    assert min(s.air_c for s in states if s.elapsed_s > repair + 3600) < 8.0
    # The door opens during consultations only.
    opened = [s.elapsed_s for a, s in pairwise(states) if s.door_open and not a.door_open]
    assert opened
    assert all(plan.consulting(t) for t in opened)


@pytest.fixture
def failing_fridge(itinerary: Itinerary) -> Iterator[tuple[DayPlan, FridgeSensorSimulator]]:
    plan = plan_of("caux-fridge-failure", itinerary)
    # The clock starts just before the failure, 600 times faster than real time.
    clock = ScaledClock(plan.time_of(at_local(plan, "10:14")), speed=600.0)
    sim = FridgeSensorSimulator(clock, model=fridge_model(plan), origin=plan.start)
    with sim:
        yield plan, sim


def test_the_fridge_failure_shows_in_the_modbus_answers(
    failing_fridge: tuple[DayPlan, FridgeSensorSimulator],
) -> None:
    plan, sim = failing_fridge
    client = ModbusSerialClient(sim.path, baudrate=9600, timeout=0.5, retries=1)
    assert client.connect()
    try:

        def probe_temperature() -> float:
            reply = client.read_input_registers(1, count=2, device_id=1)
            assert not reply.isError()
            raw = client.convert_from_registers(reply.registers[:1], client.DATATYPE.INT16)
            assert isinstance(raw, int)
            return raw / 10

        assert probe_temperature() < 8.0
        wait_for(lambda: probe_temperature() > 8.0, timeout=10, what="the probe above 8 °C")
        served = sim.served_readings()
        warm = next(r for r in served if r.temp_c > 8.0)
        assert warm.t > plan.time_of(at_local(plan, "10:15"))
        assert client.read_discrete_inputs(0, count=1, device_id=2).bits[0] in (True, False)
    finally:
        client.close()
