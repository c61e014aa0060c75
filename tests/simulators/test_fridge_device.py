from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import pairwise

import pytest
import serial
from pymodbus.client import ModbusSerialClient
from pymodbus.exceptions import ModbusIOException

from protocol.clock import ScaledClock
from simulators.fridge_device import (
    FridgeSensorSimulator,
    FridgeState,
    FridgeThermalModel,
    ThermalParameters,
)
from simulators.null_modem import NullModem
from tests.support.wait import wait_for

T0 = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)


def history(model: FridgeThermalModel, seconds: int) -> list[FridgeState]:
    return [model.advance_to(t) for t in range(1, seconds + 1)]


def test_same_seed_same_history_whatever_the_instants_asked() -> None:
    coarse = FridgeThermalModel(seed=7)
    fine = FridgeThermalModel(seed=7)
    for t in range(0, 4 * 3600, 37):
        fine.advance_to(t + 0.5)
    assert coarse.advance_to(4 * 3600) == fine.advance_to(4 * 3600)
    assert FridgeThermalModel(seed=8).advance_to(4 * 3600) != coarse.state


def test_compressor_cycles_keep_the_fridge_between_2_and_8() -> None:
    model = FridgeThermalModel(seed=1, random_doors=False)
    states = history(model, 4 * 3600)
    settled = states[600:]
    assert 3.5 < min(s.air_c for s in settled) < 4.5
    assert 5.5 < max(s.air_c for s in settled) < 6.5
    # Hysteresis: the compressor starts a few times an hour, not at every step.
    assert 10 <= model.compressor_starts <= 60
    duty = sum(s.compressor_on for s in settled) / len(settled)
    assert 0.1 < duty < 0.5


def test_random_door_openings_happen_and_warm_the_fridge() -> None:
    params = ThermalParameters(door_openings_per_hour=6.0)
    with_doors = history(FridgeThermalModel(params, seed=3), 4 * 3600)
    openings = sum(1 for a, b in pairwise(with_doors) if b.door_open and not a.door_open)
    assert 10 <= openings <= 40
    held = FridgeThermalModel(params, seed=3, random_doors=False)
    held.advance_to(600)
    before = held.state.air_c
    held.open_door()
    held.advance_to(720)
    assert held.state.door_open
    assert held.state.air_c > before + 1.0
    assert held.state.humidity_pct > 50
    held.close_door()
    assert not held.advance_to(721).door_open


def test_a_failed_compressor_lets_the_fridge_pass_8_within_20_minutes() -> None:
    model = FridgeThermalModel(seed=2, random_doors=False)
    model.advance_to(3600)
    model.fail()
    states = [model.advance_to(3600 + t) for t in range(1, 3601)]
    assert not any(s.compressor_on for s in states)
    first_above = next(i for i, s in enumerate(states) if s.air_c > 8.0)
    assert 5 * 60 < first_above < 20 * 60
    assert states[-1].air_c > 12.0
    model.repair()
    assert model.advance_to(3 * 3600).air_c < 8.0


def test_null_modem_crosses_the_wires_and_close_pulls_the_cable() -> None:
    modem = NullModem()
    try:
        with (
            serial.Serial(modem.device_path, timeout=1.0) as device,
            serial.Serial(modem.agent_path, timeout=1.0) as agent,
        ):
            agent.write(b"\x01\x04request")
            assert device.read(9) == b"\x01\x04request"
            device.write(b"answer")
            assert agent.read(6) == b"answer"
            modem.close()
            with pytest.raises(serial.SerialException):
                agent.write(b"anyone?")
                agent.read(1)
    finally:
        modem.close()


@pytest.fixture
def simulator() -> Iterator[FridgeSensorSimulator]:
    clock = ScaledClock(T0, speed=30.0)
    with FridgeSensorSimulator(clock, seed=5, random_doors=False) as sim:
        yield sim


@pytest.fixture
def client(simulator: FridgeSensorSimulator) -> Iterator[ModbusSerialClient]:
    c = ModbusSerialClient(simulator.path, baudrate=9600, timeout=0.2, retries=0)
    assert c.connect()
    yield c
    c.close()


def test_probe_registers_carry_the_model_temperature(
    simulator: FridgeSensorSimulator, client: ModbusSerialClient
) -> None:
    reply = client.read_input_registers(1, count=2, device_id=1)
    assert not reply.isError()
    served = simulator.served_readings()[-1]
    temp = client.convert_from_registers(reply.registers[:1], client.DATATYPE.INT16)
    assert temp == round(served.temp_c * 10)
    assert reply.registers[1] == round(served.humidity_pct * 10)
    config = client.read_holding_registers(0x0101, count=2, device_id=1)
    assert config.registers == [1, 0]


def test_negative_temperatures_are_twos_complement() -> None:
    cold = ThermalParameters(setpoint_c=-18.0)
    clock = ScaledClock(T0, speed=1.0)
    with FridgeSensorSimulator(clock, params=cold, random_doors=False) as freezer:
        c = ModbusSerialClient(freezer.path, baudrate=9600, timeout=0.2, retries=0)
        assert c.connect()
        try:
            raw = c.read_input_registers(1, count=1, device_id=1).registers[0]
        finally:
            c.close()
    assert raw > 0x8000
    assert raw - 0x10000 == round(freezer.served_readings()[-1].temp_c * 10)


def test_door_contact_opens_with_the_door(
    simulator: FridgeSensorSimulator, client: ModbusSerialClient
) -> None:
    assert client.read_discrete_inputs(0, count=1, device_id=2).bits[0] is True
    simulator.open_door()
    assert client.read_discrete_inputs(0, count=1, device_id=2).bits[0] is False
    simulator.close_door()
    assert client.read_discrete_inputs(0, count=1, device_id=2).bits[0] is True


def test_silence_and_garbled_replies(
    simulator: FridgeSensorSimulator, client: ModbusSerialClient
) -> None:
    simulator.silence()
    with pytest.raises(ModbusIOException):
        client.read_input_registers(1, count=2, device_id=1)
    simulator.answer()
    simulator.garble_replies(1)
    with pytest.raises(ModbusIOException):
        client.read_input_registers(1, count=2, device_id=1)
    assert not client.read_input_registers(1, count=2, device_id=1).isError()


def test_unknown_registers_get_an_exception_response(client: ModbusSerialClient) -> None:
    reply = client.read_input_registers(9, count=1, device_id=1)
    assert reply.isError()


def test_the_model_runs_on_the_scaled_clock(simulator: FridgeSensorSimulator) -> None:
    # At 30× a few wall-clock tenths of a second are several simulated seconds.
    wait_for(lambda: simulator.state().elapsed_s >= 5, timeout=5.0, what="simulated time")
    assert simulator.state().temp_c == pytest.approx(5.0, abs=1.5)
