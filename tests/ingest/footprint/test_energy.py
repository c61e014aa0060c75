from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingest.footprint.energy import (
    EnergyConfigError,
    EngineFlag,
    IdlingConfig,
    Interval,
    TractionProfile,
    auxiliary_energy,
    engine_on_intervals,
    idling,
    intersect,
    measured_fuel,
    rest_intervals,
    solar_yield,
    solar_yield_from_counter,
    traction_energy,
)
from ingest.itinerary import Itinerary, Vehicle
from protocol.models import EnergySample
from tests.ingest.footprint.tracks import fix, lat_after

T0 = datetime(2026, 1, 6, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)


def energy(t: datetime, **fields: float) -> EnergySample:
    return EnergySample.model_validate({"t": t, **fields})


def test_traction_energy_of_the_fleet_vehicles(itinerary: Itinerary) -> None:
    diesel = TractionProfile.of_vehicle(itinerary.vehicle("vexin-01"))
    electric = TractionProfile.of_vehicle(itinerary.vehicle("caux-01"))
    # 120 km × 10.5 L/100 km = 12.6 L; 120 km × 32 kWh/100 km = 38.4 kWh.
    litres = traction_energy(120.0, diesel)
    kwh = traction_energy(120.0, electric)
    assert (litres.carrier, litres.unit, litres.quantity) == ("diesel", "L", pytest.approx(12.6))
    assert (kwh.carrier, kwh.unit, kwh.quantity) == ("electricity", "kWh", pytest.approx(38.4))


def test_a_vehicle_without_its_consumption_is_a_clear_error() -> None:
    van = Vehicle(id="van-1", operator="op", label="Van", traction="petrol", depot="d")
    with pytest.raises(EnergyConfigError, match=r"van-1: petrol traction needs fuel_l_per_100km"):
        TractionProfile.of_vehicle(van)
    with pytest.raises(ValueError, match="distance"):
        traction_energy(-1.0, TractionProfile("diesel", 10.0))


def test_auxiliary_energy_from_power_or_volts_times_amps() -> None:
    samples = [
        energy(T0, power_w=-100.0),
        # No P: 12.5 V × −8 A = −100 W.
        energy(T0 + H, voltage_v=12.5, current_a=-8.0),
        energy(T0 + 2 * H, power_w=-300.0),
    ]
    aux = auxiliary_energy(samples, max_gap=2 * H)
    # 100 W for 1 h, then a ramp 100 → 300 W for 1 h (200 Wh): 0.3 kWh drawn.
    assert aux.drawn_kwh == pytest.approx(0.3)
    assert aux.charged_kwh == 0.0
    assert aux.net_kwh == pytest.approx(-0.3)
    assert aux.integrated == 2 * H
    assert aux.gaps == ()


def test_charge_and_draw_are_split_where_the_power_crosses_zero() -> None:
    aux = auxiliary_energy(
        [energy(T0, power_w=100.0), energy(T0 + H, power_w=-100.0)], max_gap=2 * H
    )
    # Two triangles of 100 W × 0.5 h / 2 = 25 Wh each.
    assert aux.charged_kwh == pytest.approx(0.025)
    assert aux.drawn_kwh == pytest.approx(0.025)


def test_gaps_are_not_integrated_but_reported() -> None:
    samples = [energy(T0 + k * H, power_w=-100.0) for k in (0, 1, 4, 5)]
    aux = auxiliary_energy(samples, max_gap=2 * H)
    assert aux.drawn_kwh == pytest.approx(0.2)
    assert aux.integrated == 2 * H
    assert aux.gaps == (Interval(T0 + H, T0 + 4 * H),)


def test_a_window_clips_readings_and_reports_the_time_without_any() -> None:
    samples = [energy(T0 + k * H, power_w=-200.0) for k in range(5)]
    inside = auxiliary_energy(samples, max_gap=2 * H, start=T0 + 0.5 * H, end=T0 + 1.5 * H)
    assert inside.drawn_kwh == pytest.approx(0.2)
    assert inside.gaps == ()
    wider = auxiliary_energy(samples[1:3], max_gap=2 * H, start=T0, end=T0 + 3 * H)
    assert wider.drawn_kwh == pytest.approx(0.2)
    assert wider.gaps == (Interval(T0, T0 + H), Interval(T0 + 2 * H, T0 + 3 * H))
    empty = auxiliary_energy([], max_gap=H, start=T0, end=T0 + H)
    assert (empty.drawn_kwh, empty.gaps) == (0.0, (Interval(T0, T0 + H),))


def test_solar_yield_from_panel_power_and_from_the_daily_counter() -> None:
    ramp = [energy(T0, pv_power_w=0.0), energy(T0 + H, pv_power_w=200.0)]
    assert solar_yield(ramp, max_gap=2 * H).kwh == pytest.approx(0.1)
    # The counter restarts at midnight: 0.5 + 0.5, then 0.2 after the restart, then 0.3.
    counter = [
        energy(T0 + k * H, yield_today_kwh=v) for k, v in enumerate((1.0, 1.5, 2.0, 0.2, 0.5))
    ]
    assert solar_yield_from_counter(counter) == pytest.approx(1.5)


def test_idling_is_rest_with_the_engine_on() -> None:
    every = timedelta(seconds=10)
    start = T0 + timedelta(minutes=10)
    # At rest (Doppler speed 0, position wandering) from 08:10 to 08:50, then driving.
    parked = [fix(start + i * every, lat_after(2.0 * (i % 2)), speed=0.0) for i in range(241)]
    driving = [
        fix(parked[-1].t + (i + 1) * every, lat_after(100.0 * (i + 1)), speed=10.0)
        for i in range(5)
    ]
    rest = rest_intervals([*parked, *driving])
    assert rest == [Interval(start, start + timedelta(minutes=40))]

    flags = [EngineFlag(T0, True), EngineFlag(T0 + timedelta(minutes=30), False)]
    engine = engine_on_intervals(flags, until=T0 + H)
    idle = idling(rest, engine, TractionProfile("diesel", 10.5))
    # 08:10 to 08:30 = 20 min at 0.8 L/h = 0.2667 L.
    assert idle.duration == timedelta(minutes=20)
    assert idle.fuel.quantity == pytest.approx(0.8 / 3)
    assert idle.fuel.carrier == "diesel"
    assert "0.8 L/h" in idle.source

    measured = idling(
        rest,
        engine,
        TractionProfile("diesel", 10.5),
        IdlingConfig(fuel_l_per_h=1.2, source="fleet test 2025"),
    )
    assert measured.fuel.quantity == pytest.approx(0.4)
    assert measured.source == "fleet test 2025"

    electric = idling(rest, engine, TractionProfile("electric", 32.0))
    assert electric.duration == timedelta(minutes=20)
    assert electric.fuel.quantity == 0.0


def test_engine_still_on_runs_to_the_end_and_intervals_intersect() -> None:
    flags = [
        EngineFlag(T0, True),
        EngineFlag(T0 + H, True),
        EngineFlag(T0 + 2 * H, False),
        EngineFlag(T0 + 3 * H, True),
    ]
    assert engine_on_intervals(flags, until=T0 + 4 * H) == [
        Interval(T0, T0 + 2 * H),
        Interval(T0 + 3 * H, T0 + 4 * H),
    ]
    a = [Interval(T0, T0 + 2 * H), Interval(T0 + 3 * H, T0 + 5 * H)]
    b = [Interval(T0 + H, T0 + 4 * H)]
    assert intersect(a, b) == [Interval(T0 + H, T0 + 2 * H), Interval(T0 + 3 * H, T0 + 4 * H)]


def test_measured_fuel_is_integrated_over_close_readings_only() -> None:
    t = datetime(2026, 1, 6, 8, 0, tzinfo=UTC)
    s = timedelta(seconds=1)
    gap = timedelta(seconds=30)
    # 0 → 36 L/h over 10 s (linear: 0.05 L), then a 60 s gap, then 18 L/h for 20 s (0.1 L).
    readings = [(t, 0.0), (t + 10 * s, 36.0), (t + 70 * s, 18.0), (t + 90 * s, 18.0)]
    found = measured_fuel(readings, max_gap=gap, start=t, end=t + 100 * s)
    assert found.litres == pytest.approx(0.05 + 0.1)
    assert found.covered == (Interval(t, t + 10 * s), Interval(t + 70 * s, t + 90 * s))
    assert found.covers(t + 5 * s) and not found.covers(t + 40 * s)
    # Clipped to the window, the linear rate is cut where the window ends.
    half = measured_fuel(readings, max_gap=gap, start=t, end=t + 5 * s)
    assert half.litres == pytest.approx(18.0 / 2 * 5 / 3600)
    # Nothing close enough, or out of order: nothing measured.
    assert measured_fuel(readings[1:3], max_gap=gap, start=t, end=t + 100 * s).litres == 0.0
    backwards = [(t + 10 * s, 5.0), (t, 5.0)]
    empty = measured_fuel(backwards, max_gap=gap, start=t, end=t + 100 * s)
    assert (empty.litres, empty.covered) == (0.0, ())
