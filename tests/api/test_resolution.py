"""Figures leave the API at their resolution, not with float noise."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

from api.routes.visits import EvidenceOut
from api.views import PointGeometry, PositionProperties, VehicleOut
from ingest.reports.footprint import Co2eOut, FactorSetOut
from ingest.resolution import RESOLUTION, Kilometres, to_digits

T = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)


def test_fleet_figures_are_rounded_to_their_resolution() -> None:
    vehicle = VehicleOut(
        id="vexin-01",
        operator="doct-eure",
        label="Médicobus du Vexin",
        traction="diesel",
        last_seen=T,
        online=True,
        soc_pct=85.10000000000001,
        battery_v=12.799999999999999,
        energy_t=T,
        fridge_temp_c=4.3500000001,
        fridge_door_open=False,
        fridge_t=T,
    )
    dumped = vehicle.model_dump()
    assert (dumped["soc_pct"], dumped["battery_v"], dumped["fridge_temp_c"]) == (85.1, 12.8, 4.4)
    assert '"soc_pct":85.1,' in vehicle.model_dump_json()
    position = PositionProperties(
        vehicle="vexin-01",
        operator="doct-eure",
        label="x",
        time=T,
        speed_mps=8.333333333333334,
        speed_kmh=30.000000000000004,
        heading_deg=271.04999999,
        online=None,
        last_seen=None,
    )
    assert (position.speed_mps, position.speed_kmh, position.heading_deg) == (8.33, 30.0, 271.0)
    assert PointGeometry(coordinates=(1.63331234567, 49.24111111111)).coordinates == (
        1.633312,
        49.241111,
    )
    assert (
        EvidenceOut(fixes=3, max_distance_m=212.34567, first_fix=T, last_fix=T).max_distance_m
        == 212.3
    )


def test_reports_figures_are_rounded_and_none_and_non_finite_pass() -> None:
    factors = FactorSetOut(id="ademe", version="23", date=date(2025, 1, 1), source="x")
    co2 = Co2eOut(
        ttw_kgco2e=2.0572020960353927, wtt_kgco2e=0.1, wtw_kgco2e=1e-9, factor_set=factors
    )
    assert (co2.ttw_kgco2e, co2.wtt_kgco2e, co2.wtw_kgco2e) == (2.0572, 0.1, 0.0)
    assert RESOLUTION["kilometres"] == 3 and Kilometres is not None
    assert to_digits(3)(2.0572020960353927) == 2.057
    assert math.isnan(to_digits(1)(math.nan))
    assert to_digits(1)(math.inf) == math.inf
    assert to_digits(1)(-1e308) == -1e308
