from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest.footprint.avoided import (
    VisitAttendance,
    avoided_trips,
    footprint_balance,
    load_car_trip_factor,
)
from ingest.footprint.emissions import FactorFileError, emissions_of, load_factor_set
from ingest.footprint.energy import EnergyAmount
from ingest.itinerary import Itinerary


def test_avoided_trips_and_the_balance_of_a_known_day(itinerary: Itinerary) -> None:
    car = load_car_trip_factor()
    assert car.kgco2e_per_km == 0.192
    vesly = avoided_trips(VisitAttendance.at_stop("v1", itinerary.stop("vesly"), 18), car)
    hacqueville = avoided_trips(
        VisitAttendance.at_stop("v2", itinerary.stop("hacqueville"), 15), car
    )
    # Vesly: 18 patients × 2 × 11 km = 396 km × 0.192 = 76.032 kg.
    assert (vesly.round_trip_km, vesly.car_km) == (22.0, 396.0)
    assert vesly.kgco2e == pytest.approx(76.032)
    # Hacqueville: 15 × 2 × 12 km = 360 km × 0.192 = 69.12 kg.
    assert hacqueville.kgco2e == pytest.approx(69.12)

    bus = emissions_of(
        [EnergyAmount("diesel", 13.0, "traction")], load_factor_set("base-empreinte")
    )
    balance = footprint_balance(bus, [vesly, hacqueville], car)
    assert balance.bus.wtw_kgco2e == pytest.approx(40.30)
    assert balance.avoided_kgco2e == pytest.approx(145.152)
    assert balance.avoided_car_km == pytest.approx(756.0)
    assert balance.net_kgco2e == pytest.approx(40.30 - 145.152)
    assert (balance.visits, balance.patients_seen) == (2, 33)
    assert balance.bus.factor_set.id == "base-empreinte"
    assert balance.car_factor_id == "impact-co2-thermal-car"


def test_a_stop_with_a_surgery_on_the_spot_avoids_nothing(itinerary: Itinerary) -> None:
    gisors = avoided_trips(
        VisitAttendance.at_stop("v3", itinerary.stop("gisors"), 25), load_car_trip_factor()
    )
    assert (gisors.car_km, gisors.kgco2e) == (0.0, 0.0)


def test_bad_attendance_and_factor_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="v9: patients seen"):
        VisitAttendance("v9", "vesly", -1, 11.0)
    with pytest.raises(ValueError, match="nearest surgery"):
        VisitAttendance("v9", "vesly", 3, float("nan"))
    bad = tmp_path / "car.toml"
    bad.write_text(
        'id = "car"\nname = "Car"\nversion = "1"\ndate = 2025-01-01\nsource = "x"\n'
        "kgco2e_per_km = 0\n",
        encoding="utf-8",
    )
    with pytest.raises(FactorFileError, match=re.escape(f"{bad}: kgco2e_per_km")):
        load_car_trip_factor(bad)


def test_a_balance_refuses_trips_computed_with_another_car_factor() -> None:
    car = load_car_trip_factor()
    other = car.model_copy(update={"version": "2"})
    trips = [avoided_trips(VisitAttendance("v1", "vesly", 1, 11.0), other)]
    bus = emissions_of([], load_factor_set("base-empreinte"))
    with pytest.raises(ValueError, match="v1: avoided trips computed with"):
        footprint_balance(bus, trips, car)
