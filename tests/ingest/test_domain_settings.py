"""The ingest's domain settings: written in TOML, checked against the fleet, refused with
a clear reason."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from firmware_config.loader import ConfigError, load_settings
from ingest.domain import DomainConfigError, IngestDomain
from ingest.itinerary import Itinerary
from ingest.reports.configuration import load_configuration
from ingest.settings import DomainSettings, IngestSettings
from ingest.store import Store

MEDICOBUS = str(Path(sys.executable).parent / "medicobus")


def write(tmp_path: Path, body: str, itinerary_file: Path) -> Path:
    path = tmp_path / "ingest.toml"
    path.write_text(f'itinerary_file = "{itinerary_file}"\n' + body, encoding="utf-8")
    return path


def test_defaults_are_the_issue_s(tmp_path: Path, itinerary_file: Path) -> None:
    domain = load_settings(IngestSettings, write(tmp_path, "", itinerary_file)).domain()
    rules = domain.fridge_rules("vexin-01").config()
    assert (rules.low_c, rules.high_c) == (2.0, 8.0)
    assert rules.heat_alarm_after == timedelta(hours=10)
    assert (rules.freeze_alarm_at_or_below_c, rules.freeze_alarm_after) == (
        -0.5,
        timedelta(minutes=60),
    )
    assert (rules.early_warning_above_c, rules.early_warning_after) == (8.0, timedelta(minutes=30))
    assert domain.footprint.factor_set == "base-empreinte"
    assert domain.footprint.idling().fuel_l_per_h == 0.8
    assert domain.alerts.webhook_url is None
    assert (domain.alerts.offline_after_s, domain.alerts.low_soc_pct) == (300, 20)


def test_a_vehicle_s_own_fridge_values_override_the_fleet_s(
    tmp_path: Path, itinerary_file: Path
) -> None:
    body = (
        "[fridge]\nearly_warning_after_min = 20\n"
        '[fridge_by_vehicle."caux-01"]\nlow_c = 3.0\nhigh_c = 6.0\n'
        '[footprint]\nfactor_set = "arrete-2017"\nidling_fuel_l_per_h = 1.1\n'
        '[alerts]\nwebhook_url = "https://hooks.example.org/medicobus"\noffline_after_s = 120\n'
    )
    domain = load_settings(IngestSettings, write(tmp_path, body, itinerary_file)).domain()
    caux = domain.fridge_rules("caux-01").config()
    assert (caux.low_c, caux.high_c, caux.early_warning_after) == (3.0, 6.0, timedelta(minutes=20))
    vexin = domain.fridge_rules("vexin-01").config()
    assert (vexin.low_c, vexin.high_c, vexin.early_warning_after) == (
        2.0,
        8.0,
        timedelta(minutes=20),
    )
    assert domain.footprint.factor_set == "arrete-2017"
    assert str(domain.alerts.webhook_url) == "https://hooks.example.org/medicobus"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('[footprint]\nfactor_set = "ademe-2099"\n', "unknown factor set 'ademe-2099'"),
        ("[fridge]\nlow_c = 9.0\n", "must be below high_c"),
        ('[alerts]\nwebhook_url = "not a url"\n', "alerts.webhook_url"),
        ("[alerts]\nlow_soc_pct = 30\nlow_soc_clear_pct = 20\n", "low_soc_clear_pct"),
        ("[fridge]\nheat_alarm_after_h = 0\n", "fridge.heat_alarm_after_h"),
        ("[fridge]\nhigh_c_typo = 7\n", "fridge.high_c_typo"),
    ],
)
def test_bad_settings_name_the_field(
    tmp_path: Path, itinerary_file: Path, body: str, words: str
) -> None:
    with pytest.raises(ConfigError, match=words):
        load_settings(IngestSettings, write(tmp_path, body, itinerary_file))


def test_fridge_values_for_a_vehicle_not_in_the_fleet_are_refused(
    store: Store, itinerary: Itinerary
) -> None:
    settings = DomainSettings.model_validate({"fridge_by_vehicle": {"vexin-02": {"high_c": 7}}})
    with pytest.raises(DomainConfigError, match=r"unknown vehicle.*vexin-02"):
        IngestDomain(store, itinerary, settings)


def test_the_ingest_records_what_it_reports_with(store: Store, itinerary: Itinerary) -> None:
    settings = DomainSettings.model_validate(
        {
            "footprint": {"factor_set": "arrete-2017"},
            "fridge_by_vehicle": {"caux-01": {"high_c": 6}},
        }
    )
    IngestDomain(store, itinerary, settings)
    recorded = load_configuration(store)
    assert recorded is not None
    assert (recorded.factor_set.id, recorded.factor_set.version) == ("arrete-2017", "1")
    assert recorded.fridge["caux-01"].high_c == 6.0
    assert recorded.fridge["vexin-01"].high_c == 8.0
    assert recorded.timezone == "Europe/Paris"
    assert recorded.car_trip_factor.kgco2e_per_km == 0.192


def test_the_ingest_command_refuses_unusable_domain_settings(
    tmp_path: Path, itinerary_file: Path
) -> None:
    config = write(
        tmp_path,
        f'database_url = "sqlite:///{tmp_path / "db.sqlite"}"\n'
        '[fridge_by_vehicle."nobody-01"]\nhigh_c = 7\n',
        itinerary_file,
    )
    result = subprocess.run(
        [MEDICOBUS, "ingest", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown vehicle(s) nobody-01" in result.stderr
    assert "Traceback" not in result.stderr
