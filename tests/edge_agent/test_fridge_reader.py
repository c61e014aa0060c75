from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.client import ModbusSerialClient

from edge_agent.fridge_reader import (
    EVENT_SENSOR_ANSWERING,
    EVENT_SENSOR_SILENT,
    FridgeReader,
    SilenceWatch,
    decode_contact,
    decode_registers,
    plan_reads,
)
from firmware_config.fridge import FridgePortConfig
from firmware_config.sensor_profiles import RegisterMapping, SensorProfile, resolve_sensor_profile
from protocol.clock import ScaledClock
from protocol.models import FridgeSample
from simulators.fridge_device import FridgeSensorSimulator, ThermalParameters
from tests.support.wait import wait_for

T0 = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)
TYPES = ModbusSerialClient.DATATYPE


def mapping(data_type: str, **extra: Any) -> RegisterMapping:
    fields: dict[str, Any] = {"function": "holding_register", "address": 10, "data_type": data_type}
    return RegisterMapping.model_validate({**fields, **extra})


# Decoding (pure).


@pytest.mark.parametrize(
    ("registers", "expected"),
    [([0x0035], 5.3), ([0xFFCC], -5.2), ([0xFF4C], -18.0), ([0x8000], -3276.8), ([0], 0.0)],
)
def test_int16_is_signed_and_scaled(registers: list[int], expected: float) -> None:
    assert decode_registers(mapping("int16", scale=0.1), registers) == expected


def test_uint16_is_not_signed() -> None:
    assert decode_registers(mapping("uint16", scale=0.1), [0xFFCC]) == 6548.4
    assert decode_registers(mapping("uint16", scale=0.1), [453]) == 45.3


def test_offset_is_added_after_scaling() -> None:
    # A 4-20 mA transmitter read as 0..1000 for -40..+60 °C.
    assert decode_registers(mapping("uint16", scale=0.1, offset=-40.0), [452]) == 5.2


@pytest.mark.parametrize("word_order", ["big", "little"])
def test_int32_and_float32_follow_the_word_order(word_order: Any) -> None:
    raw = ModbusSerialClient.convert_to_registers(-123456, TYPES.INT32, word_order=word_order)
    assert decode_registers(mapping("int32", scale=0.001, word_order=word_order), raw) == -123.456
    raw = ModbusSerialClient.convert_to_registers(4.75, TYPES.FLOAT32, word_order=word_order)
    assert decode_registers(mapping("float32", word_order=word_order), raw) == 4.75
    swapped = list(reversed(raw))
    assert decode_registers(mapping("float32", word_order=word_order), swapped) != 4.75


@given(st.integers(min_value=-32768, max_value=32767))
def test_every_int16_decodes_to_its_tenth(raw: int) -> None:
    registers = ModbusSerialClient.convert_to_registers(raw, TYPES.INT16)
    assert decode_registers(mapping("int16", scale=0.1), registers) == pytest.approx(raw / 10)


def test_wrong_register_counts_and_values_are_rejected() -> None:
    with pytest.raises(ValueError, match="int32 takes 2 register"):
        decode_registers(mapping("int32"), [1])
    with pytest.raises(ValueError, match="16-bit"):
        decode_registers(mapping("uint16"), [0x10000])
    with pytest.raises(ValueError, match="decode_contact"):
        decode_registers(mapping("bool", function="coil"), [1])


def test_contacts_can_be_inverted() -> None:
    normally_open = mapping("bool", function="discrete_input")
    normally_closed = mapping("bool", function="discrete_input", invert=True)
    assert decode_contact(normally_open, True) is True
    assert decode_contact(normally_closed, True) is False
    assert decode_contact(normally_closed, False) is True


def test_neighbouring_registers_are_read_in_one_request() -> None:
    (block,) = plan_reads(resolve_sensor_profile("sht20-xy-md02"))
    assert (block.function.value, block.address, block.count) == ("input_register", 1, 2)
    assert block.value_of(block.quantities[0][1], [0xFFCC, 453]) == -5.2
    assert block.value_of(block.quantities[1][1], [0xFFCC, 453]) == 45.3


def test_distant_registers_and_other_tables_are_separate_requests() -> None:
    profile = SensorProfile.model_validate(
        {
            "name": "combo",
            "slave_address": 4,
            "quantities": {
                "temp_c": {
                    "function": "holding_register",
                    "address": 0,
                    "data_type": "float32",
                    "unit": "°C",
                },
                "humidity_pct": {
                    "function": "holding_register",
                    "address": 200,
                    "data_type": "uint16",
                    "unit": "%",
                },
                "door_open": {"function": "coil", "address": 3, "data_type": "bool"},
            },
        }
    )
    blocks = {(b.function.value, b.address, b.count) for b in plan_reads(profile)}
    assert blocks == {("holding_register", 0, 2), ("holding_register", 200, 1), ("coil", 3, 1)}


def test_silence_is_reported_once_and_so_is_the_return() -> None:
    watch = SilenceWatch(silent_after_s=10, now=100.0)
    assert not watch.check(109.0)
    assert watch.check(111.0)
    assert not watch.check(150.0)
    assert watch.silent
    assert watch.answered(151.0)
    assert not watch.answered(152.0)
    assert not watch.check(160.0)


# End to end: pymodbus's server on one end of a null-modem, the reader on the other.


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.samples: list[FridgeSample] = []
        self.events: list[tuple[str, str]] = []

    def sample(self, sample: FridgeSample) -> None:
        with self.lock:
            self.samples.append(sample)

    def event(self, kind: str, detail: str) -> None:
        with self.lock:
            self.events.append((kind, detail))

    def count(self) -> int:
        with self.lock:
            return len(self.samples)

    def kinds(self) -> list[str]:
        with self.lock:
            return [kind for kind, _ in self.events]

    def samples_after(self, n: int) -> list[FridgeSample]:
        with self.lock:
            return self.samples[n:]


def fast_config(port: str, **overrides: Any) -> FridgePortConfig:
    fields: dict[str, Any] = {
        "port": port,
        "sensors": [{"profile": "sht20-xy-md02"}, {"profile": "rs485-io-door"}],
        "poll_interval_s": 0.05,
        # Generous for a pty on a loaded machine, short enough for silences to be quick.
        "response_timeout_s": 0.2,
        "retries": 1,
        "retry_backoff_s": 0.02,
        "silent_after_s": 0.8,
        "reopen_backoff_s": 0.05,
        "reopen_backoff_max_s": 0.2,
    }
    return FridgePortConfig.model_validate({**fields, **overrides})


@pytest.fixture
def clock() -> ScaledClock:
    return ScaledClock(T0, speed=10.0)


@pytest.fixture
def fridge(clock: ScaledClock) -> Iterator[FridgeSensorSimulator]:
    with FridgeSensorSimulator(clock, seed=11, random_doors=False) as sim:
        yield sim


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@contextmanager
def running_reader(
    config: FridgePortConfig, recorder: Recorder, clock: ScaledClock
) -> Iterator[FridgeReader]:
    reader = FridgeReader(config, recorder.sample, recorder.event, clock=clock)
    reader.start()
    yield reader
    reader.stop()


@pytest.fixture
def reader(
    fridge: FridgeSensorSimulator, recorder: Recorder, clock: ScaledClock
) -> Iterator[FridgeReader]:
    with running_reader(fast_config(fridge.path), recorder, clock) as started:
        yield started


def test_reader_reports_the_simulated_temperature_within_a_tenth(
    fridge: FridgeSensorSimulator, reader: FridgeReader, recorder: Recorder
) -> None:
    wait_for(lambda: recorder.count() >= 15, timeout=10, what="15 fridge samples")
    served = fridge.served_readings()
    for sample in recorder.samples_after(0)[:15]:
        truth = min(served, key=lambda r: abs((r.t - sample.t).total_seconds()))
        assert abs((truth.t - sample.t).total_seconds()) < 2.0
        assert sample.temp_c is not None
        assert sample.temp_c == pytest.approx(truth.temp_c, abs=0.1)
        assert sample.humidity_pct == pytest.approx(truth.humidity_pct, abs=0.1)
        assert sample.door_open is False
    assert reader.counters.get("timeouts") == 0
    assert reader.counters.get("samples") >= 15


def test_door_opening_reaches_the_samples(
    fridge: FridgeSensorSimulator, reader: FridgeReader, recorder: Recorder
) -> None:
    wait_for(lambda: recorder.count() >= 1, timeout=10, what="a first sample")
    fridge.open_door()
    n = recorder.count()
    wait_for(
        lambda: any(s.door_open for s in recorder.samples_after(n)),
        timeout=10,
        what="a sample with the door open",
    )


def test_silent_device_is_counted_reported_and_picked_up_again(
    fridge: FridgeSensorSimulator, reader: FridgeReader, recorder: Recorder
) -> None:
    wait_for(lambda: recorder.count() >= 3, timeout=10, what="samples before the silence")
    before_silence = recorder.count()
    fridge.silence()
    wait_for(
        lambda: recorder.kinds().count(EVENT_SENSOR_SILENT) == 2,
        timeout=10,
        what="both sensors reported silent",
    )
    silent_from = recorder.count()
    assert reader.counters.get("timeouts") >= 4
    assert reader.counters.get("retries") >= 2
    assert reader.counters.get("silent_reports") == 2
    assert any("sht20-xy-md02@1" in detail for _, detail in recorder.events)
    assert silent_from - before_silence <= 1  # at most the poll in flight got answers
    fridge.answer()
    wait_for(
        lambda: len(recorder.samples_after(silent_from)) >= 3,
        timeout=10,
        what="samples after the device answers again",
    )
    assert recorder.kinds().count(EVENT_SENSOR_ANSWERING) == 2
    assert all(s.temp_c is not None for s in recorder.samples_after(silent_from + 1))


def test_crc_errors_are_counted_apart_from_timeouts(
    fridge: FridgeSensorSimulator, reader: FridgeReader, recorder: Recorder
) -> None:
    wait_for(lambda: recorder.count() >= 2, timeout=10, what="first samples")
    fridge.garble_replies(3)
    wait_for(lambda: reader.counters.get("crc_errors") == 3, timeout=10, what="3 CRC errors")
    n = recorder.count()
    wait_for(lambda: recorder.count() >= n + 3, timeout=10, what="samples after the noise")
    assert reader.counters.get("timeouts") == 0
    assert EVENT_SENSOR_SILENT not in recorder.kinds()


def test_a_failed_compressor_shows_above_8_degrees(recorder: Recorder) -> None:
    clock = ScaledClock(T0, speed=600.0)
    with (
        FridgeSensorSimulator(clock, seed=4, random_doors=False) as fridge,
        running_reader(fast_config(fridge.path), recorder, clock),
    ):
        wait_for(lambda: recorder.count() >= 3, timeout=10, what="first samples")
        assert all(2.0 < (s.temp_c or 0) < 8.0 for s in recorder.samples_after(0))
        failed_at = clock.now()
        fridge.fail()
        n = recorder.count()
        hot = wait_for(
            lambda: next((s for s in recorder.samples_after(n) if (s.temp_c or 0) > 8.0), None),
            timeout=20,
            what="a sample above 8 °C",
        )
        # From at most 6.x °C the cabinet needs minutes of simulated time to pass 8 °C.
        assert hot.t - failed_at > timedelta(minutes=4)
        assert fridge.state().air_c > 8.0


def test_a_port_that_disappears_is_reopened(tmp_path: Path, recorder: Recorder) -> None:
    clock = ScaledClock(T0, speed=10.0)
    link = tmp_path / "ttyUSB-fridge"  # what a udev by-id link does for a real adapter
    first = FridgeSensorSimulator(clock, seed=1, random_doors=False).start()
    link.symlink_to(first.path)
    with running_reader(fast_config(str(link)), recorder, clock) as reader:
        wait_for(lambda: recorder.count() >= 3, timeout=10, what="samples from the first port")
        first.stop()  # the adapter is unplugged
        link.unlink()
        wait_for(lambda: reader.counters.get("port_errors") >= 2, timeout=10, what="port errors")
        warmer = ThermalParameters(setpoint_c=7.0, hysteresis_c=0.5)
        with FridgeSensorSimulator(clock, seed=2, params=warmer, random_doors=False) as second:
            link.symlink_to(second.path)  # plugged back in
            n = recorder.count()
            resumed = wait_for(
                lambda: recorder.samples_after(n)[3:],
                timeout=10,
                what="samples from the reopened port",
            )
            assert all(s.temp_c == pytest.approx(7.0, abs=0.8) for s in resumed)
        assert reader.counters.get("reader_errors") == 0


def test_refusals_and_impossible_values_do_not_stop_the_reader(
    tmp_path: Path, fridge: FridgeSensorSimulator, recorder: Recorder, clock: ScaledClock
) -> None:
    # A profile with the wrong register for humidity and a scale that puts 5 °C at 500 °C.
    profile = tmp_path / "miswired.toml"
    profile.write_text(
        """
name = "miswired"
slave_address = 1
[quantities.temp_c]
function = "input_register"
address = 1
data_type = "int16"
scale = 10.0
unit = "°C"
""",
        encoding="utf-8",
    )
    config = fast_config(
        fridge.path, sensors=[{"profile": str(profile)}, {"profile": "rs485-io-door"}]
    )
    with running_reader(config, recorder, clock) as reader:
        wait_for(lambda: recorder.count() >= 3, timeout=10, what="door-only samples")
        assert reader.counters.get("out_of_range") >= 3
        assert all(s.temp_c is None and s.door_open is False for s in recorder.samples_after(0))
    assert EVENT_SENSOR_SILENT not in recorder.kinds()


def test_exception_responses_are_counted_and_the_sensor_is_not_silent(
    tmp_path: Path, fridge: FridgeSensorSimulator, recorder: Recorder, clock: ScaledClock
) -> None:
    profile = tmp_path / "wrong-register.toml"
    profile.write_text(
        """
name = "wrong-register"
slave_address = 1
[quantities.humidity_pct]
function = "input_register"
address = 40
data_type = "uint16"
scale = 0.1
unit = "%"
""",
        encoding="utf-8",
    )
    config = fast_config(
        fridge.path, sensors=[{"profile": str(profile)}, {"profile": "rs485-io-door"}]
    )
    with running_reader(config, recorder, clock) as reader:
        wait_for(
            lambda: reader.counters.get("exception_responses") >= 12,
            timeout=10,
            what="exception responses",
        )
        assert reader.counters.get("timeouts") == 0
        assert all(s.humidity_pct is None for s in recorder.samples_after(0))
    assert EVENT_SENSOR_SILENT not in recorder.kinds()


def test_a_failing_sample_handler_does_not_stop_the_reader(
    fridge: FridgeSensorSimulator, clock: ScaledClock
) -> None:
    calls: list[FridgeSample] = []

    def broken(sample: FridgeSample) -> None:
        calls.append(sample)
        raise RuntimeError("outbox full")

    reader = FridgeReader(fast_config(fridge.path), broken, clock=clock)
    reader.start()
    try:
        wait_for(lambda: len(calls) >= 3, timeout=10, what="three handler calls")
        assert reader.counters.get("callback_errors") >= 3
    finally:
        reader.stop()


def test_a_port_that_never_opens_is_retried_and_the_sensors_reported_silent(
    tmp_path: Path, recorder: Recorder, clock: ScaledClock
) -> None:
    config = fast_config(str(tmp_path / "ttyUSB9"))
    with running_reader(config, recorder, clock) as reader:
        wait_for(
            lambda: recorder.kinds().count(EVENT_SENSOR_SILENT) == 2,
            timeout=10,
            what="silence reports without a port",
        )
        assert reader.counters.get("port_errors") >= 3
    assert recorder.count() == 0
