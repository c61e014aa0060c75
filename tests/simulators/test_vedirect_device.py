from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from edge_agent.counters import DeviceCounters
from edge_agent.vedirect import (
    CHARGE_STATES,
    BatteryMonitorReading,
    SolarChargerReading,
    VeDirectFramer,
    decode_block,
    to_energy_sample,
)
from edge_agent.vedirect_reader import VeDirectReader
from firmware_config.vedirect import VeDirectPortConfig
from ingest.store import Store
from ingest.tables.intake import energy_samples
from protocol.clock import ScaledClock
from protocol.codec import decode, encode
from protocol.models import EnergyBatch, EnergySample
from simulators.vedirect_device import (
    AuxiliaryPowerSystem,
    Bmv712Simulator,
    SmartSolarMpptSimulator,
    VeDirectDeviceSimulator,
    WrittenBlock,
    hex_async_frame,
    open_circuit_voltage,
)
from tests.support.wait import wait_for

T0 = datetime(2026, 6, 15, 8, 0, 0, tzinfo=UTC)
HOUR = 3600


def devices(
    system: AuxiliaryPowerSystem, seed: int = 7, hex_frame_probability: float = 0.3
) -> tuple[Bmv712Simulator, SmartSolarMpptSimulator]:
    clock = ScaledClock(system.state.t)
    return (
        Bmv712Simulator(system, clock, seed=seed, hex_frame_probability=hex_frame_probability),
        SmartSolarMpptSimulator(
            system, clock, seed=seed + 1, hex_frame_probability=hex_frame_probability
        ),
    )


def read_back(
    device: VeDirectDeviceSimulator, seconds: range, counters: DeviceCounters | None = None
) -> list[BatteryMonitorReading | SolarChargerReading]:
    """Run the device's output for those seconds through the agent's parser."""
    counters = counters or DeviceCounters()
    framer = VeDirectFramer(counters)
    start = device.system.state.t
    readings = []
    for s in seconds:
        for block in framer.feed(device.output_at(start + timedelta(seconds=s))):
            reading = decode_block(block, counters)
            if reading is not None:
                readings.append(reading)
    return readings


def bmv_at(bmv: Bmv712Simulator, t: datetime) -> BatteryMonitorReading:
    counters = DeviceCounters()
    framer = VeDirectFramer(counters)
    readings = [decode_block(b, counters) for b in framer.feed(bmv.output_at(t))]
    (reading,) = [r for r in readings if r is not None]
    assert isinstance(reading, BatteryMonitorReading)
    return reading


def mppt_at(mppt: SmartSolarMpptSimulator, t: datetime) -> SolarChargerReading:
    counters = DeviceCounters()
    (block,) = VeDirectFramer(counters).feed(mppt.output_at(t))
    reading = decode_block(block, counters)
    assert isinstance(reading, SolarChargerReading)
    return reading


# --- the wire --------------------------------------------------------------------------


def test_the_documented_hex_frame_is_what_the_simulator_writes() -> None:
    # Register 0x0201 (device state) = 5 (float), as Victron's HEX protocol shows it.
    assert hex_async_frame(0x0201, bytes([5])) == b":A0102000543\n"


def test_every_block_verifies_with_hex_frames_interleaved() -> None:
    system = AuxiliaryPowerSystem(T0, solar_power_w=200.0)
    bmv, mppt = devices(system, hex_frame_probability=1.0)
    counters = DeviceCounters()
    bmv_readings = read_back(bmv, range(1, 61), counters)
    mppt_readings = read_back(mppt, range(1, 61), counters)
    assert len(bmv_readings) == 60
    assert len(mppt_readings) == 60
    assert counters.get("vedirect_blocks") == 180  # the BMV sends its history block too
    assert counters.get("vedirect_history_blocks") == 60
    assert counters.get("vedirect_hex_frames") == 120
    for name in ("bad_checksum", "truncated", "malformed", "oversize", "garbage_bytes"):
        assert counters.get(f"vedirect_{name}") == 0, name


def test_deterministic_for_a_seed() -> None:
    def run(seed: int) -> bytes:
        system = AuxiliaryPowerSystem(T0, solar_power_w=150.0, equipment_load_w=300.0)
        bmv, mppt = devices(system, seed=seed)
        out = b""
        for s in range(1, 121):
            t = T0 + timedelta(seconds=s)
            out += bmv.output_at(t) + mppt.output_at(t)
        return out

    assert run(3) == run(3)
    assert run(3) != run(4)


# --- the battery model -----------------------------------------------------------------


def test_lifepo4_resting_voltage() -> None:
    socs = [i / 100 for i in range(101)]
    volts = [open_circuit_voltage(s) for s in socs]
    assert volts == sorted(volts)
    assert open_circuit_voltage(0.5) == pytest.approx(13.15)
    assert 12.8 <= open_circuit_voltage(0.2) <= 13.1  # the nominal 12.8 V plateau
    assert open_circuit_voltage(1.0) == pytest.approx(13.6)


def test_the_equipment_load_discharges_the_battery_when_parked() -> None:
    system = AuxiliaryPowerSystem(T0, capacity_ah=200.0, soc=0.9, equipment_load_w=500.0)
    bmv, _ = devices(system)
    before = bmv_at(bmv, T0 + timedelta(seconds=1))
    after = bmv_at(bmv, T0 + timedelta(hours=1))
    assert before.current_a is not None and before.current_a < -35  # ~500 W / 13.3 V
    assert before.soc_pct is not None and after.soc_pct is not None
    # 500 W for an hour at ~13.3 V is ~38 Ah of 200 Ah.
    assert before.soc_pct - after.soc_pct == pytest.approx(19.0, abs=1.0)
    # CE and SOC say the same, to SOC's resolution (0.1 % of 200 Ah).
    assert after.consumed_ah == pytest.approx(200 * (1 - after.soc_pct / 100), abs=0.11)
    # Time to go: down to the 10 % discharge floor at the present current.
    assert after.current_a is not None
    floor_ah = (after.soc_pct / 100 - 0.1) * 200
    assert after.time_to_go_min == pytest.approx(floor_ah / -after.current_a * 60, abs=2)
    assert after.voltage_v is not None and after.voltage_v < before.voltage_v  # type: ignore[operator]
    assert after.starter_voltage_v == pytest.approx(12.6, abs=0.01)


def test_the_alternator_charges_while_driving() -> None:
    system = AuxiliaryPowerSystem(T0, soc=0.5, equipment_load_w=100.0)
    bmv, _ = devices(system)
    system.set_driving(True)
    first = bmv_at(bmv, T0 + timedelta(seconds=1))
    later = bmv_at(bmv, T0 + timedelta(minutes=30))
    assert first.current_a is not None and first.current_a > 20  # 30 A in, ~7.6 A out
    assert first.time_to_go_min is None  # not discharging
    assert later.soc_pct is not None and first.soc_pct is not None
    assert later.soc_pct > first.soc_pct + 5
    assert later.starter_voltage_v == pytest.approx(14.2, abs=0.01)
    system.set_driving(False)
    parked = bmv_at(bmv, T0 + timedelta(minutes=31))
    assert parked.current_a is not None and parked.current_a < 0


def test_solar_charges_then_floats_when_full() -> None:
    system = AuxiliaryPowerSystem(T0, soc=0.93, equipment_load_w=100.0, solar_power_w=400.0)
    _, mppt = devices(system)
    bulk = mppt_at(mppt, T0 + timedelta(seconds=1))
    assert bulk.charge_state == "bulk"
    assert bulk.tracker_mode == "tracking"
    assert bulk.pv_power_w == pytest.approx(400.0, abs=1.0)
    assert bulk.pv_voltage_v == pytest.approx(36.0)
    absorption = mppt_at(mppt, T0 + timedelta(minutes=20))
    assert absorption.charge_state == "absorption"
    full = mppt_at(mppt, T0 + timedelta(hours=2))
    assert full.charge_state == "float"
    # Full: the array only carries the equipment's 100 W.
    assert full.pv_power_w == pytest.approx(100.0 / 0.97, abs=1.0)
    assert system.state.soc == 1.0
    system.set_solar_power(0.0)
    night = mppt_at(mppt, T0 + timedelta(hours=2, seconds=1))
    assert night.charge_state == "off"
    assert night.pv_power_w == 0.0


def test_solar_yields_roll_over_at_midnight() -> None:
    evening = datetime(2026, 6, 15, 23, 0, 0, tzinfo=UTC)
    system = AuxiliaryPowerSystem(evening, soc=0.3, equipment_load_w=0.0, solar_power_w=360.0)
    _, mppt = devices(system)
    before = mppt_at(mppt, evening + timedelta(minutes=59, seconds=59))
    after = mppt_at(mppt, evening + timedelta(hours=1, minutes=10))
    assert before.yield_today_kwh == pytest.approx(0.36, abs=0.011)
    assert before.day_sequence == 0
    assert after.day_sequence == 1
    assert after.yield_yesterday_kwh == pytest.approx(0.36, abs=0.011)
    assert after.yield_today_kwh == pytest.approx(0.06, abs=0.011)
    assert after.yield_total_kwh == pytest.approx(0.42, abs=0.011)
    assert after.max_power_yesterday_w == pytest.approx(360.0, abs=1.0)


def test_low_soc_raises_the_alarm() -> None:
    system = AuxiliaryPowerSystem(T0, soc=0.15, equipment_load_w=200.0)
    bmv, _ = devices(system)
    reading = bmv_at(bmv, T0 + timedelta(seconds=1))
    assert reading.alarm is True
    assert reading.relay_closed is True
    assert reading.alarm_reason == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"capacity_ah": 0.0}, "capacity_ah"),
        ({"soc": 1.5}, "soc"),
        ({"equipment_load_w": -1.0}, "load"),
        ({"solar_power_w": -5.0}, "solar"),
    ],
)
def test_bad_battery_settings_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AuxiliaryPowerSystem(T0, **kwargs)  # type: ignore[arg-type]


def test_bad_device_settings_are_refused() -> None:
    system = AuxiliaryPowerSystem(T0)
    with pytest.raises(ValueError, match="aware"):
        AuxiliaryPowerSystem(datetime(2026, 6, 15, 8))
    with pytest.raises(ValueError, match="hex_frame_probability"):
        Bmv712Simulator(system, ScaledClock(T0), hex_frame_probability=2.0)
    with pytest.raises(ValueError, match="period_s"):
        SmartSolarMpptSimulator(system, ScaledClock(T0), period_s=0.0)


# --- end to end: simulator → pseudo-terminal → pyserial → reader ------------------------


@pytest.fixture
def running_devices() -> Iterator[
    tuple[AuxiliaryPowerSystem, Bmv712Simulator, SmartSolarMpptSimulator, ScaledClock]
]:
    start = datetime.now(UTC).replace(microsecond=0)
    clock = ScaledClock(start, speed=10.0)
    system = AuxiliaryPowerSystem(start, soc=0.62, equipment_load_w=350.0, solar_power_w=250.0)
    bmv = Bmv712Simulator(system, clock, seed=11, hex_frame_probability=0.3)
    mppt = SmartSolarMpptSimulator(system, clock, seed=12, hex_frame_probability=0.3)
    bmv.start()
    mppt.start()
    yield system, bmv, mppt, clock
    bmv.stop()
    mppt.stop()


def contiguous_match(
    samples: list[EnergySample], written: list[WrittenBlock], label: str, field: str, scale: float
) -> list[WrittenBlock]:
    """The run of written blocks the samples are, in order; fails if there is none."""
    values = [getattr(s, field) for s in samples]
    for i in range(len(written) - len(samples) + 1):
        run = written[i : i + len(samples)]
        if all(
            v == pytest.approx(int(w.value(label)) * scale)
            for v, w in zip(values, run, strict=True)
        ):
            return run
    raise AssertionError(f"{field} {values} is not a run of what the device wrote")


def test_readers_deliver_what_the_devices_said(
    running_devices: tuple[
        AuxiliaryPowerSystem, Bmv712Simulator, SmartSolarMpptSimulator, ScaledClock
    ],
) -> None:
    system, bmv, mppt, clock = running_devices
    lock = threading.Lock()
    received: dict[str, list[EnergySample]] = {"bmv": [], "mppt": []}

    def collect(sample: EnergySample) -> None:
        with lock:
            received[sample.source or "?"].append(sample)

    readers = [
        VeDirectReader(VeDirectPortConfig(port=bmv.path, device="bmv"), collect, clock=clock),
        VeDirectReader(VeDirectPortConfig(port=mppt.path, device="mppt"), collect, clock=clock),
    ]
    for reader in readers:
        reader.start()
    try:
        wait_for(
            lambda: len(received["bmv"]) >= 12 and len(received["mppt"]) >= 12,
            what="a dozen samples from each device",
        )
    finally:
        for reader in readers:
            reader.stop()
    with lock:
        bmv_samples, mppt_samples = list(received["bmv"]), list(received["mppt"])

    # Every valid block arrived, in order, with the values the device wrote...
    run = contiguous_match(bmv_samples, bmv.written(), "V", "voltage_v", 0.001)
    contiguous_match(bmv_samples, bmv.written(), "SOC", "soc_pct", 0.1)
    for sample, written in zip(bmv_samples, run, strict=True):
        # ...which are the battery's state, to the device's resolution and noise.
        assert sample.soc_pct == pytest.approx(written.state.soc * 100, abs=0.05)
        assert sample.voltage_v == pytest.approx(written.state.battery_voltage_v, abs=0.01)
        assert sample.current_a == pytest.approx(written.state.battery_current_a, abs=0.1)
        assert sample.source == "bmv"
    mppt_run = contiguous_match(mppt_samples, mppt.written(), "PPV", "pv_power_w", 1.0)
    for sample, written in zip(mppt_samples, mppt_run, strict=True):
        assert sample.charge_state == CHARGE_STATES[written.state.charge_state]
        assert sample.pv_power_w == pytest.approx(written.state.pv_power_w, abs=0.5)
        assert sample.source == "mppt"
    assert [s.t for s in bmv_samples] == sorted(s.t for s in bmv_samples)
    for reader in readers:
        assert reader.counters.get("vedirect_bad_checksum") == 0
        assert reader.counters.get("vedirect_hex_frames") >= 1
        assert reader.counters.get("vedirect_unexpected_device") == 0
    assert system.state.soc < 0.62  # 250 W of sun cannot carry 350 W of equipment


def test_a_reader_on_the_wrong_device_says_so_and_keeps_the_data(
    running_devices: tuple[
        AuxiliaryPowerSystem, Bmv712Simulator, SmartSolarMpptSimulator, ScaledClock
    ],
) -> None:
    _, _, mppt, clock = running_devices
    received: list[EnergySample] = []
    config = VeDirectPortConfig(port=mppt.path, device="bmv")
    reader = VeDirectReader(config, received.append, clock=clock)
    reader.start()
    try:
        wait_for(lambda: len(received) >= 2, what="samples from the MPPT")
    finally:
        reader.stop()
    assert reader.counters.get("vedirect_unexpected_device") >= 2
    assert {s.source for s in received} == {"mppt"}


def test_a_failing_consumer_does_not_stop_the_reader(
    running_devices: tuple[
        AuxiliaryPowerSystem, Bmv712Simulator, SmartSolarMpptSimulator, ScaledClock
    ],
) -> None:
    _, bmv, _, clock = running_devices

    def refuse(sample: EnergySample) -> None:
        raise RuntimeError("outbox full")

    reader = VeDirectReader(VeDirectPortConfig(port=bmv.path, device="bmv"), refuse, clock=clock)
    reader.start()
    try:
        wait_for(
            lambda: reader.counters.get("vedirect_delivery_errors") >= 3, what="three failures"
        )
        assert reader.running
    finally:
        reader.stop()


# --- into the cloud's store ---------------------------------------------------------------


def test_samples_of_both_devices_cross_the_wire_into_the_store(store: Store) -> None:
    system = AuxiliaryPowerSystem(T0, soc=0.15, equipment_load_w=300.0, solar_power_w=120.0)
    bmv, mppt = devices(system)
    counters = DeviceCounters()
    samples = []
    for device in (bmv, mppt):
        for reading in read_back(device, range(1, 4), counters):
            t = T0 + timedelta(seconds=len(samples))
            sample = to_energy_sample(reading, t, counters)
            assert sample is not None
            samples.append(sample)
    batch = decode(encode(EnergyBatch(vehicle="vexin-01", seq=0, samples=samples)))
    assert batch == EnergyBatch(vehicle="vexin-01", seq=0, samples=samples)
    assert store.save_batch(batch, received_at=T0 + timedelta(minutes=1))
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(energy_samples).order_by(energy_samples.c.t)).mappings().all()
    assert [r["source"] for r in rows] == ["bmv"] * 3 + ["mppt"] * 3
    first_bmv, first_mppt = rows[0], rows[3]
    assert first_bmv["alarm"] is True
    assert first_bmv["alarm_reason"] == 4
    assert first_bmv["time_to_go_min"] is not None and first_bmv["time_to_go_min"] > 0
    assert first_bmv["soc_pct"] == pytest.approx(15.0, abs=0.1)
    assert first_bmv["charge_state"] is None
    assert first_mppt["charge_state"] == "bulk"
    assert first_mppt["pv_voltage_v"] == pytest.approx(36.0)
    assert first_mppt["charger_error"] == 0
    assert first_mppt["yield_total_kwh"] == 0.0
    assert first_mppt["soc_pct"] is None
