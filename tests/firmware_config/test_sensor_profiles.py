from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from firmware_config.fridge import FridgePortConfig, FridgeSensorConfig
from firmware_config.loader import ConfigError, TomlSettings, load_settings
from firmware_config.sensor_profiles import (
    DataType,
    RegisterFunction,
    load_sensor_profile,
    resolve_sensor_profile,
    shipped_profile_names,
)

PROBE = """
name = "probe"
slave_address = 3

[quantities.temp_c]
function = "input_register"
address = 1
data_type = "int16"
scale = 0.1
unit = "°C"
"""


def write(tmp_path: Path, text: str, name: str = "probe.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_profiles_are_listed_and_load() -> None:
    assert {"sht20-xy-md02", "rs485-io-door"} <= set(shipped_profile_names())
    probe = resolve_sensor_profile("sht20-xy-md02")
    temp = probe.quantities["temp_c"]
    assert probe.slave_address == 1
    assert (temp.function, temp.address, temp.data_type, temp.scale, temp.unit) == (
        RegisterFunction.INPUT_REGISTER,
        1,
        DataType.INT16,
        0.1,
        "°C",
    )
    humidity = probe.quantities["humidity_pct"]
    assert (humidity.address, humidity.data_type, humidity.unit) == (2, DataType.UINT16, "%")
    door = resolve_sensor_profile("rs485-io-door").quantities["door_open"]
    assert door.function is RegisterFunction.DISCRETE_INPUT
    assert door.invert


def test_a_profile_file_is_loaded_by_path(tmp_path: Path) -> None:
    profile = resolve_sensor_profile(str(write(tmp_path, PROBE)))
    assert profile.name == "probe"
    assert profile.quantities["temp_c"].word_count == 1


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        (("scale = 0.1", "scael = 0.1"), "quantities.temp_c.scael", "Extra inputs"),
        (('data_type = "int16"', 'data_type = "int12"'), "quantities.temp_c.data_type", "int16"),
        (('data_type = "int16"', 'data_type = "bool"'), "quantities.temp_c", "does not fit"),
        (("address = 1", "address = 1\nwords = 2"), "quantities.temp_c", "takes 1"),
        (("address = 1", "address = 70000"), "quantities.temp_c.address", "less than or equal"),
        (("slave_address = 3", "slave_address = 0"), "slave_address", "greater than or equal"),
        (('unit = "°C"', 'unit = "%"'), "quantities.temp_c", "expected '°C'"),
        (("scale = 0.1", "scale = 0"), "quantities.temp_c", "must not be 0"),
        (("[quantities.temp_c]", "[quantities.pressure]"), "quantities.pressure", "temp_c"),
    ],
)
def test_profile_errors_name_the_file_and_the_field(
    tmp_path: Path, change: tuple[str, str], field: str, reason: str
) -> None:
    path = write(tmp_path, PROBE.replace(*change))
    with pytest.raises(ConfigError) as caught:
        load_sensor_profile(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    assert field in message
    assert reason in message


def test_a_door_contact_must_be_a_bit(tmp_path: Path) -> None:
    text = PROBE.replace("[quantities.temp_c]", "[quantities.door_open]").replace(
        'unit = "°C"', 'unit = ""'
    )
    with pytest.raises(ConfigError, match=r"door_open: a door contact is a coil"):
        load_sensor_profile(write(tmp_path, text))


def test_unreadable_profiles_are_rejected_clearly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.toml: no such sensor profile file"):
        load_sensor_profile(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match=r"broken\.toml: not valid TOML"):
        load_sensor_profile(write(tmp_path, "name = ", "broken.toml"))
    with pytest.raises(ConfigError, match=r"no shipped sensor profile 'sht21'.*sht20-xy-md02"):
        resolve_sensor_profile("sht21")


def test_fridge_port_defaults_poll_a_probe_every_five_seconds() -> None:
    config = FridgePortConfig(port="/dev/ttyUSB0")
    assert config.poll_interval_s == 5.0
    assert [s.label for s in config.sensors] == ["sht20-xy-md02@1"]


def test_a_sensor_address_can_be_overridden() -> None:
    sensor = FridgeSensorConfig(profile="rs485-io-door", address=7)
    assert sensor.slave_address == 7
    assert sensor.label == "rs485-io-door@7"


def test_two_sensors_on_one_address_are_rejected() -> None:
    with pytest.raises(ValidationError, match=r"sensors.1: address 1 already used"):
        FridgePortConfig.model_validate(
            {
                "port": "/dev/ttyUSB0",
                "sensors": [
                    {"profile": "sht20-xy-md02"},
                    {"profile": "rs485-io-door", "address": 1},
                ],
            }
        )


def test_two_sensors_for_one_quantity_are_rejected() -> None:
    with pytest.raises(ValidationError, match=r"sensors.1: temp_c already provided by"):
        FridgePortConfig.model_validate(
            {
                "port": "/dev/ttyUSB0",
                "sensors": [
                    {"profile": "sht20-xy-md02"},
                    {"profile": "sht20-xy-md02", "address": 5},
                ],
            }
        )


class _FridgeSettings(TomlSettings):
    fridge: FridgePortConfig


def test_a_bad_profile_in_the_agent_file_names_both_files(tmp_path: Path) -> None:
    profile = write(tmp_path, PROBE.replace('data_type = "int16"', 'data_type = "int12"'))
    agent_file = write(
        tmp_path,
        f'[fridge]\nport = "/dev/ttyUSB0"\n[[fridge.sensors]]\nprofile = "{profile}"\n',
        "agent.toml",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(_FridgeSettings, agent_file)
    message = str(caught.value)
    assert str(agent_file) in message
    assert "fridge.sensors.0" in message
    assert f"{profile}: 1 invalid field(s)" in message
    assert "quantities.temp_c.data_type" in message
