"""Footprint and funder reports through the API, on stored data whose figures are
computed by hand; with both factor sets."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import pytest

from ingest.footprint.avoided import VisitAttendance
from ingest.footprint.storage import ENGINE_OFF_EVENT, ENGINE_ON_EVENT
from ingest.itinerary import Itinerary
from ingest.reports.footprint import CSV_COLUMNS
from ingest.settings import DomainSettings, FootprintSettings
from ingest.store import Store
from ingest.tables.footprint import footprint_days
from ingest.visit_figures import PunctualitySummary, VisitCounts
from protocol import (
    EnergyBatch,
    EnergySample,
    EventBatch,
    EventSample,
    GpsBatch,
    GpsSample,
    ObdBatch,
    ObdSample,
)
from protocol.clock import ManualClock
from tests.ingest.footprint.tracks import meridian_track
from tests.support.domain import domain_ingestor, feed
from tests.support.live import running_api

T0 = datetime(2026, 1, 6, 8, 0, tzinfo=UTC)  # 09:00 in Paris, a Tuesday
DAY = "2026-01-06"
S = timedelta(seconds=1)
MIN = timedelta(minutes=1)


def vexin_day() -> list[GpsBatch | EnergyBatch | EventBatch]:
    """10 km north in 16 min 40 s, then 30 min parked with the engine running."""
    drive = meridian_track(101, 100.0, 10 * S, start=T0)
    end = drive[-1]
    parked = [
        GpsSample(t=end.t + (i + 1) * 10 * S, lat=end.lat, lon=end.lon, speed_mps=0.0, fix_mode=3)
        for i in range(181)
    ]
    battery = [
        EnergySample(t=T0 + i * MIN, source="bmv", voltage_v=12.8, power_w=-120.0, soc_pct=80)
        for i in range(121)
    ]
    # The charger's "yield today" restarts each morning; last evening's reading is the base.
    evening = EnergySample(t=T0 - timedelta(hours=16), source="mppt", yield_today_kwh=1.2)
    charger = [
        EnergySample(
            t=T0 + i * 10 * MIN,
            source="mppt",
            voltage_v=13.2,
            current_a=2.0,
            pv_power_w=30.0,
            yield_today_kwh=round(0.10 + 0.025 * i, 3),
        )
        for i in range(13)
    ]
    engine = [
        EventSample(t=T0 - 5 * MIN, kind=ENGINE_ON_EVENT),
        EventSample(t=T0 + timedelta(hours=1), kind=ENGINE_OFF_EVENT),
    ]
    return [
        GpsBatch(vehicle="vexin-01", seq=0, samples=drive),
        GpsBatch(vehicle="vexin-01", seq=1, samples=parked),
        EnergyBatch(vehicle="vexin-01", seq=0, samples=[evening]),
        EnergyBatch(vehicle="vexin-01", seq=1, samples=battery + charger),
        EventBatch(vehicle="vexin-01", seq=0, samples=engine),
    ]


def caux_day() -> list[GpsBatch]:
    """5 km on electric traction; no engine events (idling not measured)."""
    return [GpsBatch(vehicle="caux-01", seq=0, samples=meridian_track(51, 100.0, 10 * S))]


def derive(
    store: Store, itinerary: Itinerary, factor_set: str, extra: Sequence[ObdBatch] = ()
) -> set[str]:
    """Both buses' day (and ``extra`` batches) fed and their records derived; returns
    what the ingest said of the batches."""
    settings = DomainSettings(footprint=FootprintSettings(factor_set=factor_set))
    clock = ManualClock(T0 + timedelta(days=1))
    domain, ingestor = domain_ingestor(store, itinerary, settings, clock)
    outcomes = feed(ingestor, [*vexin_day(), *caux_day(), *extra], T0 + timedelta(hours=3))
    statuses = {o.status for o in outcomes}
    assert statuses <= {"stored", "duplicate"}
    domain.catch_up()
    return statuses


# 10 km × 10.5 L/100 km = 1.05 L of traction; 30 min idling × 0.8 L/h = 0.4 L: 1.45 L.
# The API gives kg CO2e to a tenth of a gram (ingest.resolution).
KG_RESOLUTION = 5e-5
EXPECTED = {
    "base-empreinte": (1.45 * 2.49, 1.45 * 0.61, "2026-11-23"),  # 3.6105 + 0.8845
    "arrete-2017": (1.45 * 2.51, 1.45 * 0.66, "2017-04-26"),  # 3.6395 + 0.957
}
# 5 km × 32 kWh/100 km = 1.6 kWh, all upstream.
EXPECTED_ELECTRIC = {"base-empreinte": 1.6 * 0.052, "arrete-2017": 1.6 * 0.048}


def test_footprint_report_in_both_factor_sets(store: Store, itinerary: Itinerary) -> None:
    for factor_set, (ttw, wtt, dated) in EXPECTED.items():
        # Changing the factor set rebuilds the stored days with the new one.
        derive(store, itinerary, factor_set)
        with running_api(store) as api:
            body = api.get(
                "/api/v1/reports/footprint",
                params={"vehicle": "vexin-01", "from": DAY, "to": DAY},
            ).json()
            totals = body["totals"]
            assert (body["from"], body["to"], body["timezone"]) == (DAY, DAY, "Europe/Paris")
            assert totals["distance_km"] == pytest.approx(10.0, abs=1e-6)
            assert totals["traction"] == {
                "carrier": "diesel",
                "quantity": pytest.approx(1.05),
                "unit": "L",
            }
            assert totals["idling"]["measured"] is True
            assert totals["idling"]["hours"] == pytest.approx(0.5)
            assert totals["idling"]["fuel"]["quantity"] == pytest.approx(0.4)
            co2e = totals["co2e"]
            assert co2e["ttw_kgco2e"] == pytest.approx(ttw, abs=KG_RESOLUTION)
            assert co2e["wtt_kgco2e"] == pytest.approx(wtt, abs=KG_RESOLUTION)
            assert co2e["wtw_kgco2e"] == pytest.approx(ttw + wtt, abs=KG_RESOLUTION)
            assert co2e["factor_set"]["id"] == factor_set
            assert co2e["factor_set"]["date"] == dated
            assert totals["per_km"]["wtw_kgco2e"] == pytest.approx(
                (ttw + wtt) / 10.0, abs=KG_RESOLUTION
            )
            assert totals["per_km"]["factor_set"]["id"] == factor_set
            assert totals["per_operating_day"]["wtw_kgco2e"] == pytest.approx(
                ttw + wtt, abs=KG_RESOLUTION
            )
            # 120 W drawn for 2 h; the charger's own output is not battery load.
            assert totals["auxiliary"]["drawn_kwh"] == pytest.approx(0.24)
            assert totals["auxiliary"]["charged_kwh"] == 0.0
            # The counter restarted overnight (1.2 → 0.10) and ends the day at 0.40.
            assert totals["solar_kwh"] == pytest.approx(0.40)
            (day,) = body["days"]
            assert day["date"] == DAY and day["complete"] is True
            assert day["co2e"]["factor_set"]["id"] == factor_set
            assert totals["avoided"] is None and totals["balance"] is None
            assert any("not recorded" in n for n in body["notes"])

            electric = api.get(
                "/api/v1/reports/footprint",
                params={"vehicle": "caux-01", "from": DAY, "to": DAY},
            ).json()["totals"]
            assert electric["distance_km"] == pytest.approx(5.0, abs=1e-6)
            assert electric["traction"]["quantity"] == pytest.approx(1.6)
            assert electric["traction"]["unit"] == "kWh"
            assert electric["co2e"]["ttw_kgco2e"] == 0.0
            assert electric["co2e"]["wtt_kgco2e"] == pytest.approx(
                EXPECTED_ELECTRIC[factor_set], abs=KG_RESOLUTION
            )
            assert electric["idling"]["measured"] is False


def test_footprint_csv_has_one_line_per_day_and_a_total(store: Store, itinerary: Itinerary) -> None:
    derive(store, itinerary, "base-empreinte")
    with running_api(store) as api:
        response = api.get(
            "/api/v1/reports/footprint",
            params={"vehicle": "vexin-01", "from": "2026-01-05", "to": DAY, "format": "csv"},
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        assert (
            "footprint-vexin-01-2026-01-05-2026-01-06.csv"
            in response.headers["content-disposition"]
        )
        rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    # The evening before (a charger reading only), the day, the total.
    assert [r[1] for r in rows[1:]] == ["2026-01-05", DAY, "total"]
    total = dict(zip(CSV_COLUMNS, rows[-1], strict=True))
    assert total["distance_km"] == "10.000"
    assert total["traction_quantity"] == "1.050"
    assert total["traction_unit"] == "L"
    assert total["idling_quantity"] == "0.400"
    assert float(total["wtw_kgco2e"]) == pytest.approx(4.495, abs=1e-3)
    assert total["wtw_kgco2e_per_km"] == "0.4495"
    assert (total["factor_set_id"], total["factor_set_date"]) == ("base-empreinte", "2026-11-23")


class RecordedVisits:
    """What the punctuality side will provide: two held visits with their patients."""

    def __init__(self, itinerary: Itinerary) -> None:
        self._visits = [
            VisitAttendance.at_stop("v1", itinerary.stop("vesly"), 12),  # 11 km away
            VisitAttendance.at_stop("v2", itinerary.stop("morgny"), 5),  # 14 km away
        ]

    def attendance(
        self, vehicle: str, start: datetime, end: datetime
    ) -> Sequence[VisitAttendance] | None:
        return self._visits if vehicle == "vexin-01" else None

    def counts(self, vehicle: str, start: datetime, end: datetime) -> VisitCounts | None:
        return VisitCounts(scheduled=3, held=2, cancelled=1)

    def punctuality(
        self, vehicle: str, start: datetime, end: datetime
    ) -> PunctualitySummary | None:
        return PunctualitySummary(early=0, on_time=1, late=1, missed=0, mean_delay_min=4.0)


def test_avoided_trips_stand_beside_the_bus_emissions(store: Store, itinerary: Itinerary) -> None:
    derive(store, itinerary, "base-empreinte")
    with running_api(store, visit_figures=RecordedVisits(itinerary)) as api:
        totals = api.get(
            "/api/v1/reports/footprint", params={"vehicle": "vexin-01", "from": DAY, "to": DAY}
        ).json()["totals"]
        funder = api.get(
            "/api/v1/reports/funder", params={"vehicle": "vexin-01", "year": 2026}
        ).json()
    # 12 patients × 2 × 11 km + 5 × 2 × 14 km = 264 + 140 = 404 car km × 0.192 kg.
    avoided = totals["avoided"]
    assert (avoided["visits"], avoided["patients_seen"]) == (2, 17)
    assert avoided["car_km"] == pytest.approx(404.0)
    assert avoided["kgco2e"] == pytest.approx(404 * 0.192, abs=KG_RESOLUTION)
    assert avoided["car_factor"]["id"] == "impact-co2-thermal-car"
    # The bus's own figure is unchanged by the avoided trips; the net is separate.
    assert totals["co2e"]["wtw_kgco2e"] == pytest.approx(4.495, abs=KG_RESOLUTION)
    balance = totals["balance"]
    assert balance["bus_wtw_kgco2e"] == pytest.approx(4.495, abs=KG_RESOLUTION)
    assert balance["net_kgco2e"] == pytest.approx(4.495 - 404 * 0.192, abs=KG_RESOLUTION)
    assert totals["per_visit"]["wtw_kgco2e"] == pytest.approx(4.495 / 2, abs=KG_RESOLUTION)
    assert funder["visits"] == {"scheduled": 3, "held": 2, "cancelled": 1}
    assert funder["patients_seen"] == 17
    assert funder["punctuality"]["late"] == 1


def test_funder_report_says_what_it_does_not_know(store: Store, itinerary: Itinerary) -> None:
    derive(store, itinerary, "arrete-2017")
    with running_api(store, token="coord-eure-token") as api:
        body = api.get("/api/v1/reports/funder", params={"vehicle": "vexin-01", "year": 2026})
        assert body.status_code == 200, body.text
        report = body.json()
        assert (
            api.get(
                "/api/v1/reports/funder", params={"vehicle": "caux-01", "year": 2026}
            ).status_code
            == 404
        )
        assert (
            api.get(
                "/api/v1/reports/funder", params={"vehicle": "vexin-01", "year": 1999}
            ).status_code
            == 422
        )
    assert (report["from"], report["to"]) == ("2026-01-01", "2026-12-31")
    assert report["distance_km"] == pytest.approx(10.0, abs=1e-6)
    assert report["co2e"]["wtw_kgco2e"] == pytest.approx(1.45 * 3.17, abs=KG_RESOLUTION)
    assert report["co2e"]["factor_set"]["id"] == "arrete-2017"
    assert report["energy"]["traction"]["quantity"] == pytest.approx(1.05)
    assert (report["visits"], report["patients_seen"], report["punctuality"]) == (None,) * 3
    assert report["avoided"] is None
    notes = " ".join(report["notes"])
    for missing in ("visits held and scheduled", "patients seen", "punctuality"):
        assert missing in notes
    # No fridge reading this year: every day so far is "no data", none "in range".
    days = report["coldchain"]["days"]
    today = datetime.now(UTC).date()
    so_far = (min(date(2026, 12, 31), today) - date(2026, 1, 1)).days + 1
    assert days["days"] in (so_far, so_far + 1)  # a local day may be ahead of UTC
    assert days["no_data"] == days["days"]
    assert days["in_range"] == 0


BAD_REQUESTS = [
    ({"vehicle": "vexin-01", "from": DAY, "to": "2026-01-01"}, 422, "before 'from'"),
    ({"vehicle": "vexin-01", "from": "2024-01-01", "to": DAY}, 422, "at most"),
    ({"vehicle": "nobody", "from": DAY, "to": DAY}, 404, "no vehicle 'nobody'"),
    ({"vehicle": "vexin-01", "from": "06/01/2026", "to": DAY}, 422, "date"),
    ({"vehicle": "vexin-01", "from": DAY, "to": DAY, "format": "xls"}, 422, "csv"),
    ({"vehicle": "vexin-01", "to": DAY}, 422, "from"),
]


def test_bad_report_requests_are_refused_clearly(store: Store, itinerary: Itinerary) -> None:
    derive(store, itinerary, "base-empreinte")
    with running_api(store) as api:
        for params, status, words in BAD_REQUESTS:
            response = api.get("/api/v1/reports/footprint", params=params)
            assert response.status_code == status, params
            assert words in str(response.json()["detail"]), params


def test_days_of_two_factor_sets_are_never_added_up(store: Store, itinerary: Itinerary) -> None:
    derive(store, itinerary, "base-empreinte")
    # As if the settings had just changed and only one day had been recomputed yet.
    with store.engine.begin() as conn:
        conn.execute(
            footprint_days.update()
            .where(footprint_days.c.day == date(2026, 1, 5))
            .values(factor_set_id="arrete-2017")
        )
    with running_api(store) as api:
        mixed = api.get(
            "/api/v1/reports/footprint",
            params={"vehicle": "vexin-01", "from": "2026-01-05", "to": DAY},
        )
        one = api.get(
            "/api/v1/reports/footprint", params={"vehicle": "vexin-01", "from": DAY, "to": DAY}
        )
    assert mixed.status_code == 409
    detail = mixed.json()["detail"]
    assert "cannot add figures from factor sets" in detail
    assert "base-empreinte v1" in detail and "arrete-2017 v1" in detail
    assert one.status_code == 200


def test_reports_wait_for_the_ingest_settings(store: Store) -> None:
    with running_api(store) as api:
        response = api.get(
            "/api/v1/reports/footprint", params={"vehicle": "vexin-01", "from": DAY, "to": DAY}
        )
    assert response.status_code == 503
    assert "has not recorded its settings" in response.json()["detail"]


def test_the_engineer_reads_reports_of_their_operator_only(
    store: Store, itinerary: Itinerary
) -> None:
    derive(store, itinerary, "base-empreinte")
    with running_api(store, token="eng-eure-token") as api:
        ok = api.get(
            "/api/v1/reports/footprint", params={"vehicle": "vexin-01", "from": DAY, "to": DAY}
        )
        other = api.get(
            "/api/v1/reports/footprint", params={"vehicle": "caux-01", "from": DAY, "to": DAY}
        )
    assert ok.status_code == 200
    assert other.status_code == 404


def obd_readings(start: datetime, end: datetime, rate: float) -> list[ObdSample]:
    """The engine's fuel rate every 5 s over ``[start, end]``."""
    count = int((end - start).total_seconds() // 5) + 1
    return [
        ObdSample(t=start + i * 5 * S, fuel_rate_l_per_h=rate, fuel_level_pct=60.0)
        for i in range(count)
    ]


def test_the_engines_measured_fuel_stands_for_the_model_where_it_covers_the_driving(
    store: Store, itinerary: Itinerary
) -> None:
    # The drive is 1000 s, then 30 min parked with the engine on: 2800 s at 9 L/h = 7 L.
    readings = obd_readings(T0, T0 + 2800 * S, 9.0)
    extra = [ObdBatch(vehicle="vexin-01", seq=0, samples=readings)]
    assert derive(store, itinerary, "base-empreinte", extra) == {"stored"}
    with running_api(store) as api:
        body = api.get(
            "/api/v1/reports/footprint", params={"vehicle": "vexin-01", "from": DAY, "to": DAY}
        ).json()
        totals = body["totals"]
        assert totals["fuel"] == {
            "source": "measured",
            "measured_days": 1,
            "measured_litres": pytest.approx(7.0, abs=1e-3),
            "coverage": 1.0,  # one day: its own
        }
        assert body["days"][0]["fuel"]["coverage"] == 1.0
        # The CO2e is the measured fuel's; the model's 1.45 L stays beside it.
        assert totals["co2e"]["ttw_kgco2e"] == pytest.approx(7.0 * 2.49, abs=1e-3)
        assert totals["co2e"]["wtt_kgco2e"] == pytest.approx(7.0 * 0.61, abs=1e-3)
        assert totals["traction"]["quantity"] == pytest.approx(1.05)
        lines = list(csv.DictReader(io.StringIO(api.get(
            "/api/v1/reports/footprint",
            params={"vehicle": "vexin-01", "from": DAY, "to": DAY, "format": "csv"},
        ).text)))  # fmt: skip
        assert [(r["fuel_source"], r["measured_fuel_l"]) for r in lines] == [
            ("measured", "7.000"),
            ("measured", "7.000"),
        ]
        # caux-01 has no adapter: the model, said so.
        electric = api.get(
            "/api/v1/reports/footprint", params={"vehicle": "caux-01", "from": DAY, "to": DAY}
        ).json()["totals"]
        assert electric["fuel"]["source"] == "model"
        assert electric["fuel"]["measured_litres"] is None


def test_readings_covering_part_of_the_driving_leave_the_model_in_charge(
    store: Store, itinerary: Itinerary
) -> None:
    # Readings for the first half of the drive only (adapter unplugged after).
    readings = obd_readings(T0, T0 + 500 * S, 9.0)
    derive(
        store, itinerary, "base-empreinte", [ObdBatch(vehicle="vexin-01", seq=0, samples=readings)]
    )
    with running_api(store) as api:
        body = api.get(
            "/api/v1/reports/footprint", params={"vehicle": "vexin-01", "from": DAY, "to": DAY}
        ).json()
    (day,) = body["days"]
    assert day["fuel"]["source"] == "model"
    assert 0.45 <= day["fuel"]["coverage"] <= 0.55
    assert body["totals"]["co2e"]["ttw_kgco2e"] == pytest.approx(1.45 * 2.49, abs=1e-3)
