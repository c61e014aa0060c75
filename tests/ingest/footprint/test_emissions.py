from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ingest.footprint.day import day_footprint
from ingest.footprint.distance import filter_fixes
from ingest.footprint.emissions import (
    FactorError,
    FactorFileError,
    FactorSetMismatchError,
    bundled_factor_sets,
    emissions_of,
    load_factor_set,
    per_km,
    per_visit,
    total,
)
from ingest.footprint.energy import EnergyAmount, Interval, TractionProfile
from ingest.itinerary import Itinerary
from ingest.local_days import LocalDay
from tests.ingest.footprint.tracks import T0, meridian_track

PARIS = ZoneInfo("Europe/Paris")


def test_bundled_factor_sets_hold_the_published_values() -> None:
    assert bundled_factor_sets() == ["arrete-2017", "base-empreinte"]
    base = load_factor_set("base-empreinte")
    rule = load_factor_set("arrete-2017")
    assert (base.factor("diesel").ttw_kgco2e, base.factor("diesel").wtt_kgco2e) == (2.49, 0.61)
    assert base.factor("petrol").wtw_kgco2e == 2.69
    assert base.factor("electricity").wtw_kgco2e == 0.052
    assert rule.factor("diesel").wtw_kgco2e == 3.17
    assert rule.factor("electricity").wtw_kgco2e == 0.048
    assert rule.ref.date == date(2017, 4, 26)
    assert base.ref.version == "1"


def test_a_known_diesel_day_in_both_factor_sets() -> None:
    # 12.6 L of traction (120 km at 10.5 L/100 km) and 0.4 L idling: 13.0 L.
    day = [EnergyAmount("diesel", 12.6, "traction"), EnergyAmount("diesel", 0.4, "idling")]
    base = emissions_of(day, load_factor_set("base-empreinte"))
    rule = emissions_of(day, load_factor_set("arrete-2017"))
    # 13 × 2.49 = 32.37, 13 × 0.61 = 7.93, 13 × 3.10 = 40.30.
    assert (base.ttw_kgco2e, base.wtt_kgco2e, base.wtw_kgco2e) == pytest.approx(
        (32.37, 7.93, 40.30)
    )
    # 13 × 2.51 = 32.63, 13 × 0.66 = 8.58, 13 × 3.17 = 41.21.
    assert (rule.ttw_kgco2e, rule.wtt_kgco2e, rule.wtw_kgco2e) == pytest.approx(
        (32.63, 8.58, 41.21)
    )
    assert base.factor_set.id == "base-empreinte"
    assert rule.factor_set.id == "arrete-2017"
    # Per km: 40.30 / 120.
    intensity = per_km(base, 120.0)
    assert intensity is not None
    assert intensity.wtw_kgco2e == pytest.approx(0.335833, abs=1e-6)
    assert intensity.factor_set == base.factor_set
    assert per_km(base, 0.0) is None


def test_electricity_is_all_upstream_and_petrol_is_split() -> None:
    kwh = [EnergyAmount("electricity", 38.4, "traction")]
    base = emissions_of(kwh, load_factor_set("base-empreinte"))
    rule = emissions_of(kwh, load_factor_set("arrete-2017"))
    assert (base.ttw_kgco2e, base.wtt_kgco2e) == (0.0, pytest.approx(38.4 * 0.052))
    assert rule.wtw_kgco2e == pytest.approx(38.4 * 0.048)
    petrol = emissions_of(
        [EnergyAmount("petrol", 10.0, "traction")], load_factor_set("base-empreinte")
    )
    assert (petrol.ttw_kgco2e, petrol.wtt_kgco2e) == pytest.approx((21.9, 5.0))


def test_a_day_of_driving_from_fixes_to_co2e(itinerary: Itinerary) -> None:
    # 1201 fixes 100 m apart: exactly 120 km, driven from 09:00 local.
    track = filter_fixes(meridian_track(1201, 100.0, timedelta(seconds=5)))
    profile = TractionProfile.of_vehicle(itinerary.vehicle("vexin-01"))
    stop = Interval(T0 + timedelta(hours=3), T0 + timedelta(hours=4))
    engine = [Interval(stop.start, stop.start + timedelta(minutes=30))]
    day = LocalDay.of(date(2026, 1, 6), PARIS)
    for set_id, wtw in (("base-empreinte", 13.0 * 3.10), ("arrete-2017", 13.0 * 3.17)):
        fp = day_footprint(
            "vexin-01", day, track, profile, load_factor_set(set_id), rest=[stop], engine_on=engine
        )
        assert fp.distance_km == pytest.approx(120.0, abs=1e-6)
        assert fp.traction.quantity == pytest.approx(12.6)
        assert fp.idling.duration == timedelta(minutes=30)
        assert fp.idling.fuel.quantity == pytest.approx(0.4)
        assert fp.emissions.wtw_kgco2e == pytest.approx(wtw)
        assert fp.emissions.factor_set.id == set_id
    other_day = LocalDay.of(date(2026, 1, 7), PARIS)
    quiet = day_footprint("vexin-01", other_day, track, profile, load_factor_set("base-empreinte"))
    assert (quiet.distance_km, quiet.emissions.wtw_kgco2e, quiet.per_km) == (0.0, 0.0, None)


def test_period_totals_and_per_visit_refuse_to_mix_factor_sets() -> None:
    base = load_factor_set("base-empreinte")
    days = [emissions_of([EnergyAmount("diesel", q, "traction")], base) for q in (10.0, 5.0)]
    period = total(days, base.ref)
    assert period.wtw_kgco2e == pytest.approx(15 * 3.10)
    visit = per_visit(period, 10)
    assert visit is not None
    assert visit.wtw_kgco2e == pytest.approx(1.5 * 3.10)
    assert visit.per == "visit"
    other = emissions_of([EnergyAmount("diesel", 1.0, "traction")], load_factor_set("arrete-2017"))
    with pytest.raises(FactorSetMismatchError, match="base-empreinte v1 and arrete-2017 v1"):
        _ = period + other


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "mine.toml"
    path.write_text(body, encoding="utf-8")
    return path


HEADER = 'id = "mine"\nname = "Mine"\nversion = "3"\ndate = 2025-01-01\nsource = "test"\n'
DIESEL = '[[factor]]\ncarrier = "diesel"\nunit = "L"\nlabel = "B7"\n'


def test_a_factor_file_of_ones_own_is_loaded_by_path(tmp_path: Path) -> None:
    path = write(
        tmp_path, HEADER + DIESEL + "ttw_kgco2e = 2.5\nwtt_kgco2e = 0.6\nwtw_kgco2e = 3.1\n"
    )
    mine = load_factor_set(path)
    assert mine.ref.version == "3"
    with pytest.raises(FactorError, match=r"'mine' .*no factor for electricity"):
        emissions_of([EnergyAmount("electricity", 1.0, "traction")], mine)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (HEADER + DIESEL + "ttw_kgco2e = 2.5\nwtt_kgco2e = 0.6\nwtw_kgco2e = 3.3\n", "is not wtw"),
        (
            HEADER
            + DIESEL.replace('"L"', '"kWh"')
            + "ttw_kgco2e = 1\nwtt_kgco2e = 0\nwtw_kgco2e = 1\n",
            "counted in L",
        ),
        (
            HEADER + DIESEL + "ttw_kgco2e = -1\nwtt_kgco2e = 1\nwtw_kgco2e = 0\n",
            "factor.0.ttw_kgco2e",
        ),
        (
            HEADER + (DIESEL + "ttw_kgco2e = 1\nwtt_kgco2e = 0\nwtw_kgco2e = 1\n") * 2,
            "more than one factor",
        ),
        (HEADER, "factor: Field required"),
        ("id = [", "not valid TOML"),
    ],
)
def test_bad_factor_files_are_refused_naming_the_file(
    tmp_path: Path, body: str, message: str
) -> None:
    path = write(tmp_path, body)
    with pytest.raises(FactorFileError) as caught:
        load_factor_set(path)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_unknown_or_missing_factor_sets(tmp_path: Path) -> None:
    with pytest.raises(
        FactorFileError, match="unknown factor set 'ademe'; bundled: arrete-2017, base-empreinte"
    ):
        load_factor_set("ademe")
    with pytest.raises(FactorFileError, match="no such factor file"):
        load_factor_set(tmp_path / "absent.toml")
