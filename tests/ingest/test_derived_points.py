"""Derived metrics as time-series points: the exact line protocol of each record kind, and
the points queued in the outbox with the records they describe (SQLite and PostgreSQL).

A point is identified by its measurement, tags and timestamp: a record computed again
must write its point again under the same identity, so the server overwrites it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from ingest.alerts.records import AlertRecord
from ingest.coldchain import storage as coldchain_storage
from ingest.coldchain.daily import FridgeDay
from ingest.coldchain.reconcile import StoredAlarm
from ingest.footprint.emissions import FactorSetRef
from ingest.footprint.records import StoredFootprintDay
from ingest.itinerary import Itinerary
from ingest.points import (
    alert_line,
    footprint_day_line,
    fridge_alarm_lines,
    fridge_day_line,
    lines_of,
    visit_line,
)
from ingest.punctuality.ledger import CoordinatorChange, VisitFacts, VisitState
from ingest.punctuality.storage import PunctualityStore
from ingest.punctuality.tracker import PunctualityTracker
from ingest.settings import DomainSettings
from ingest.store import Store, points_wanted
from protocol import (
    EnergyBatch,
    EnergySample,
    FridgeBatch,
    FridgeSample,
    GpsBatch,
    GpsSample,
)
from protocol.clock import ManualClock
from tests.ingest.footprint.tracks import meridian_track
from tests.ingest.punctuality.days import batches_of
from tests.ingest.punctuality.test_tracker import MONDAY, RECEIVED, ingest, vexin_monday
from tests.support.domain import domain_ingestor, feed

S = timedelta(seconds=1)
MIN = timedelta(minutes=1)
H = timedelta(hours=1)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


# --- line builders --------------------------------------------------------------------------


def vesly_facts() -> VisitFacts:
    return VisitFacts(
        visit_id="vexin-01:2026-11-16:vesly",
        scheduled_arrival=utc("2026-11-16T08:00"),
        scheduled_departure=utc("2026-11-16T11:00"),
        closes_at=utc("2026-11-16T11:00"),
        on_time_from=-5 * MIN,
        on_time_until=5 * MIN,
    )


def test_a_visit_held_late_and_counted() -> None:
    state = VisitState(
        status="late",
        arrival=utc("2026-11-16T08:12"),
        departure=utc("2026-11-16T10:58"),
        arrival_source="detected",
        delay=12 * MIN,
        confirmed_arrival=None,
        confirmed_by=None,
        confirmed_at=None,
        cancelled_reason=None,
        cancelled_by=None,
        patients_seen=14,
        patients_seen_by="Camille",
    )
    assert visit_line("vexin-01", "vesly", vesly_facts(), state) == (
        "visit,stop=vesly,vehicle=vexin-01 "
        'arrival_source="detected",confirmed=false,delay_s=720,departure_delay_s=-120,'
        'dwell_s=9960,held=true,patients_seen=14i,status="late",'
        'visit="vexin-01:2026-11-16:vesly" 1794816000000'
    )


def test_a_missed_visit_has_no_delay() -> None:
    state = VisitState("missed", None, None, None, None, None, None, None, None, None)
    assert visit_line("vexin-01", "vesly", vesly_facts(), state) == (
        "visit,stop=vesly,vehicle=vexin-01 "
        'confirmed=false,held=false,status="missed",visit="vexin-01:2026-11-16:vesly" '
        "1794816000000"
    )


def footprint_day(**changes: object) -> StoredFootprintDay:
    values: dict[str, object] = {
        "vehicle": "vexin-01",
        "day": date(2026, 11, 16),
        "zone": "Europe/Paris",
        "distance_km": 84.25,
        "fixes_kept": 3000,
        "fixes_rejected": 12,
        "traction_carrier": "diesel",
        "traction_quantity": 8.5,
        "idling_measured": True,
        "idling": 20 * MIN,
        "idling_quantity": 0.25,
        "idling_rate_per_h": 0.75,
        "idling_source": "engine on at rest",
        "aux_drawn_kwh": 1.5,
        "aux_charged_kwh": 1.25,
        "aux_integrated": 10 * H,
        "aux_gap": timedelta(0),
        "solar_kwh": None,
        "solar_method": None,
        "ttw_kgco2e": 22.5,
        "wtt_kgco2e": 5.25,
        "factor_set": FactorSetRef("base-empreinte", "23.0", date(2026, 11, 23), "ADEME"),
        "complete": True,
    }
    values.update(changes)
    return StoredFootprintDay(**values)  # type: ignore[arg-type]


def test_a_footprint_day_at_local_midnight() -> None:
    # Paris is UTC+1 in November: the day starts at 23:00 UTC the day before.
    assert footprint_day_line(footprint_day()) == (
        "footprint_day,carrier=diesel,factor_set=base-empreinte,vehicle=vexin-01 "
        "aux_charged_kwh=1.25,aux_drawn_kwh=1.5,complete=true,distance_km=84.25,"
        'factor_set_version="23.0",fixes_kept=3000i,fixes_rejected=12i,idling_l=0.25,'
        "idling_measured=true,idling_s=1200,traction_l=8.5,ttw_kgco2e=22.5,wtt_kgco2e=5.25,"
        "wtw_kgco2e=27.75 1794783600000"
    )


def test_an_electric_footprint_day_counts_kwh() -> None:
    line = footprint_day_line(
        footprint_day(
            vehicle="caux-01",
            traction_carrier="electricity",
            traction_quantity=16.0,
            idling_measured=False,
            idling=timedelta(0),
            idling_quantity=0.0,
            solar_kwh=0.75,
        )
    )
    assert line.startswith("footprint_day,carrier=electricity,factor_set=base-empreinte,")
    assert ",traction_kwh=16," in line and ",idling_kwh=0," in line
    assert ",solar_kwh=0.75," in line and "traction_l" not in line


def test_a_fridge_day_at_local_midnight() -> None:
    record = FridgeDay(
        day=date(2026, 7, 14),
        samples=288,
        min_c=3.5,
        max_c=9.25,
        in_range=23 * H,
        above=45 * MIN,
        below=timedelta(0),
        no_data=15 * MIN,
        excursions=1,
        heat_alarm=False,
        freeze_alarm=False,
        early_warning=True,
    )
    # Paris is UTC+2 in July.
    assert fridge_day_line("caux-01", record, "Europe/Paris", complete=True) == (
        "fridge_day,vehicle=caux-01 above_min=45,below_min=0,complete=true,early_warning=true,"
        "excursions=1i,freeze_alarm=false,heat_alarm=false,in_range_min=1380,max_c=9.25,"
        'min_c=3.5,no_data_min=15,samples=288i,status="warning" 1783980000000'
    )


T = utc("2026-01-06T05:00")


def heat_alarm(**changes: object) -> StoredAlarm:
    values: dict[str, object] = {
        "id": 7,
        "kind": "heat",
        "key": f"heat@{T.isoformat()}",
        "run_start": T,
        "run_end": T + 11 * H,
        "raised_at": T + 10 * H,
        "peak_c": 12.5,
        "ongoing": False,
        "cut_by_gap": False,
        "withdrawn": False,
    }
    values.update(changes)
    return StoredAlarm(**values)  # type: ignore[arg-type]


ALARM_FIELDS = "alarm_id=7i,cut_by_gap=false,duration_s=39600,ongoing=false,peak_c=12.5"


def test_a_fridge_alarm_over_is_raised_then_cleared() -> None:
    assert fridge_alarm_lines("vexin-01", heat_alarm()) == [
        f'fridge_alarm,kind=heat,vehicle=vexin-01 active=true,{ALARM_FIELDS},state="raised" '
        "1767711600000",
        f'fridge_alarm,kind=heat,vehicle=vexin-01 active=false,{ALARM_FIELDS},state="cleared" '
        "1767715200000",
    ]


def test_an_ongoing_fridge_alarm_is_only_raised() -> None:
    (line,) = fridge_alarm_lines("vexin-01", heat_alarm(ongoing=True))
    assert line.endswith('state="raised" 1767711600000') and "ongoing=true" in line


def test_a_moved_fridge_alarm_rewrites_its_old_raise_with_its_state_then() -> None:
    # Late readings show the run began earlier: raised at 15:00, no longer at 15:30.
    before = heat_alarm(run_start=T + 30 * MIN, raised_at=T + 10 * H + 30 * MIN)
    lines = fridge_alarm_lines("vexin-01", heat_alarm(), before)
    assert [(line.split('state="')[1]) for line in lines] == [
        'raised" 1767711600000',
        'raised" 1767713400000',
        'cleared" 1767715200000',
    ]


def test_a_withdrawn_fridge_alarm_rewrites_its_points_as_withdrawn() -> None:
    lines = fridge_alarm_lines("vexin-01", heat_alarm(withdrawn=True), heat_alarm())
    assert [line.split(" ", 1)[1] for line in lines] == [
        f'active=false,{ALARM_FIELDS},state="withdrawn" 1767711600000',
        f'active=false,{ALARM_FIELDS},state="withdrawn" 1767715200000',
    ]


def test_an_alert_is_raised_at_its_start_and_cleared_at_its_end() -> None:
    alert = AlertRecord(
        id=3,
        vehicle="vexin-01",
        operator="doct-eure",
        kind="offline",
        subject="",
        severity="warning",
        message="vexin-01 is offline",
        detail={},
        since=T,
        ended=T + 20 * MIN,
        raised_at=T + 5 * MIN,
        cleared_at=T + 21 * MIN,
        ack_by=None,
        ack_at=None,
        ack_comment=None,
    )
    assert [alert_line("raised", alert), alert_line("cleared", alert)] == [
        'alert,kind=offline,vehicle=vexin-01 active=true,alert_id=3i,severity="warning",'
        'state="raised",subject="" 1767675600000',
        'alert,kind=offline,vehicle=vexin-01 active=false,alert_id=3i,severity="warning",'
        'state="cleared",subject="" 1767676800000',
    ]


# --- in the outbox, with the records ------------------------------------------------------


@pytest.fixture
def ts_store(database_url: str, itinerary: Itinerary) -> Iterator[Store]:
    s = Store.open(database_url, points=lines_of)
    s.load_fleet(itinerary)
    yield s
    s.close()


def queued(store: Store, measurement: str) -> list[str]:
    return [
        line
        for _, line in store.pending_points(100_000)
        if line.startswith((measurement + ",", measurement + " "))
    ]


def identity(line: str) -> tuple[str, str]:
    """Measurement with tags, and timestamp: what the server keys a point on."""
    return line.split(" ", 1)[0], line.rsplit(" ", 1)[1]


def fields(line: str) -> dict[str, str]:
    """The fields of a point whose string values hold no comma, space or equals sign."""
    return dict(f.split("=", 1) for f in line.split(" ")[1].split(","))


JAN_6 = utc("2026-01-06T08:00")  # 09:00 in Paris, a Tuesday


def test_a_footprint_day_keeps_its_point_identity_when_computed_again(
    ts_store: Store, itinerary: Itinerary
) -> None:
    domain, ingestor = domain_ingestor(
        ts_store, itinerary, DomainSettings(), ManualClock(JAN_6 + timedelta(days=1))
    )
    drive = meridian_track(101, 100.0, 10 * S, start=JAN_6)  # 10 km north
    feed(ingestor, [GpsBatch(vehicle="vexin-01", seq=0, samples=drive)], JAN_6 + H)
    domain.catch_up()
    (first,) = queued(ts_store, "footprint_day")
    assert identity(first) == (
        "footprint_day,carrier=diesel,factor_set=base-empreinte,vehicle=vexin-01",
        str(ms(utc("2026-01-05T23:00"))),
    )
    assert float(fields(first)["distance_km"]) == pytest.approx(10.0)
    assert "aux_drawn_kwh=0," in first

    # The battery monitor's readings of that morning arrive: the day is computed again.
    battery = [
        EnergySample(t=JAN_6 + i * MIN, source="bmv", voltage_v=12.8, power_w=-120.0, soc_pct=80)
        for i in range(61)
    ]
    feed(ingestor, [EnergyBatch(vehicle="vexin-01", seq=0, samples=battery)], JAN_6 + H)
    domain.catch_up()
    first_again, second = queued(ts_store, "footprint_day")
    assert first_again == first
    assert identity(second) == identity(first)
    assert float(fields(second)["aux_drawn_kwh"]) == pytest.approx(0.12)


def test_no_derived_point_without_a_time_series_server(store: Store, itinerary: Itinerary) -> None:
    domain, ingestor = domain_ingestor(
        store, itinerary, DomainSettings(), ManualClock(JAN_6 + timedelta(days=1))
    )
    drive = meridian_track(101, 100.0, 10 * S, start=JAN_6)
    feed(ingestor, [GpsBatch(vehicle="vexin-01", seq=0, samples=drive)], JAN_6 + H)
    domain.catch_up()
    assert store.count_pending_points() == 0


def test_a_record_rolled_back_leaves_no_point(ts_store: Store) -> None:
    record = FridgeDay(
        date(2026, 1, 6), 1, 5.0, 5.0, H, timedelta(0), timedelta(0), 23 * H, 0, False, False, False
    )
    with pytest.raises(RuntimeError), ts_store.engine.begin() as conn:
        coldchain_storage.save_day(
            conn,
            "vexin-01",
            record,
            zone="Europe/Paris",
            complete=True,
            basis="test",
            now=JAN_6,
        )
        assert len(queued(ts_store, "fridge_day")) == 0  # not visible outside the transaction
        raise RuntimeError("the transaction fails after the record")
    assert ts_store.count_pending_points() == 0


def fridge_readings(temps: list[float], start: datetime) -> list[FridgeSample]:
    return [FridgeSample(t=start + i * MIN, temp_c=t) for i, t in enumerate(temps)]


def test_fridge_alarms_days_and_alerts_are_queued_and_rewritten_when_late_readings_move_them(
    ts_store: Store, itinerary: Itinerary
) -> None:
    t0 = utc("2026-01-06T05:00")
    clock = ManualClock(t0 + 2 * H)
    domain, ingestor = domain_ingestor(ts_store, itinerary, DomainSettings(), clock)
    # 40 minutes at 9 °C from 05:10: an early warning raised at 05:40, over at 05:50.
    warm = fridge_readings([9.0] * 40 + [5.0], t0 + 10 * MIN)
    feed(ingestor, [FridgeBatch(vehicle="vexin-01", seq=0, samples=warm)], t0 + H)
    (alarm,) = coldchain_storage.list_alarms(ts_store.engine, vehicle_ids=["vexin-01"])
    raise_and_clear = queued(ts_store, "fridge_alarm")
    assert [(identity(p)[1], fields(p)["state"]) for p in raise_and_clear] == [
        (str(ms(t0 + 40 * MIN)), '"raised"'),
        (str(ms(t0 + 50 * MIN)), '"cleared"'),
    ]
    assert {fields(p)["alarm_id"] for p in raise_and_clear} == {f"{alarm.id}i"}
    domain.alerts.evaluate()
    # Found once over: its alert is raised when the alarm was and cleared at the run's end.
    fridge_alert = [p for p in queued(ts_store, "alert") if ",kind=fridge_early_warning," in p]
    assert [(identity(p), fields(p)["state"]) for p in fridge_alert] == [
        (("alert,kind=fridge_early_warning,vehicle=vexin-01", str(ms(t0 + 40 * MIN))), '"raised"'),
        (("alert,kind=fridge_early_warning,vehicle=vexin-01", str(ms(t0 + 50 * MIN))), '"cleared"'),
    ]
    assert {fields(p)["subject"] for p in fridge_alert} == {f'"{alarm.id}"'}

    # The ten minutes before arrive late: the run began at 05:00, raised at 05:30.
    late = fridge_readings([5.0] + [9.0] * 10, t0 - MIN)
    feed(ingestor, [FridgeBatch(vehicle="vexin-01", seq=1, samples=late)], t0 + H)
    moved = queued(ts_store, "fridge_alarm")[len(raise_and_clear) :]
    assert [(identity(p)[1], fields(p)["state"]) for p in moved] == [
        (str(ms(t0 + 30 * MIN)), '"raised"'),
        (str(ms(t0 + 40 * MIN)), '"raised"'),  # the old raise, written again
        (str(ms(t0 + 50 * MIN)), '"cleared"'),
    ]

    domain.catch_up()
    (day,) = queued(ts_store, "fridge_day")
    assert identity(day) == ("fridge_day,vehicle=vexin-01", str(ms(utc("2026-01-05T23:00"))))
    assert fields(day)["early_warning"] == "true" and fields(day)["samples"] == "52i"


def test_visits_keep_their_point_identity_when_derived_again_or_changed(
    ts_store: Store, itinerary: Itinerary
) -> None:
    tracker = PunctualityTracker(ts_store, itinerary)
    tracker.start(MONDAY, past_days=1)
    ingest(ts_store, tracker, vexin_monday(itinerary))
    db = PunctualityStore(ts_store)
    rows = {r.stop: r for r in db.visits_between(MONDAY, MONDAY, "vexin-01")}
    latest = {identity(p): p for p in queued(ts_store, "visit")}
    vesly = rows["vesly"].facts
    vesly_id = ("visit,stop=vesly,vehicle=vexin-01", str(ms(vesly.scheduled_arrival)))
    hacqueville_id = (
        "visit,stop=hacqueville,vehicle=vexin-01",
        str(ms(rows["hacqueville"].facts.scheduled_arrival)),
    )
    assert set(latest) == {vesly_id, hacqueville_id}
    assert vesly.detected_arrival is not None
    delay = (vesly.detected_arrival - vesly.scheduled_arrival).total_seconds()
    assert fields(latest[vesly_id])["status"] == '"on_time"'
    assert float(fields(latest[vesly_id])["delay_s"]) == pytest.approx(delay)
    assert fields(latest[hacqueville_id])["status"] == '"late"'
    assert fields(latest[hacqueville_id])["held"] == "true"

    # A restarted ingest derives the day again: same points, written again.
    written = len(queued(ts_store, "visit"))
    again = PunctualityTracker(ts_store, itinerary)
    again.start(MONDAY, past_days=1)
    rewritten = queued(ts_store, "visit")[written:]
    assert {identity(p) for p in rewritten} == {vesly_id, hacqueville_id}
    assert {identity(p): p for p in rewritten}[vesly_id] == latest[vesly_id]

    # A coordinator counts the patients: the visit's point is written again.
    db.record_change(
        vesly.visit_id,
        lambda row, so_far: CoordinatorChange("attendance", "Camille", RECEIVED, patients_seen=14),
    )
    (counted,) = queued(ts_store, "visit")[written + len(rewritten) :]
    assert identity(counted) == vesly_id
    assert fields(counted)["patients_seen"] == "14i"
    assert fields(counted)["status"] == '"on_time"'


def test_visits_no_stay_matched_turn_missed_on_a_day_the_bus_reached_no_stop(
    ts_store: Store, itinerary: Itinerary
) -> None:
    """No stop is ever reached, so no detection touches the day: once the bus's fixes go
    past each visit's window, the visit is classified missed and its point written."""
    tracker = PunctualityTracker(ts_store, itinerary)
    tracker.start(MONDAY, past_days=1)
    start = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)
    parked = [  # all day in a yard 60 km from any stop
        GpsSample(t=start + k * 10 * S, lat=48.5, lon=2.5, speed_mps=0.0, fix_mode=3, hdop=0.9)
        for k in range(11 * 360)
    ]
    batches = batches_of("vexin-01", parked, 500)
    # Up to 11:33 UTC: past Vesly's window, before Hacqueville's.
    ingest(ts_store, tracker, batches[:4])
    db = PunctualityStore(ts_store)
    assert db.events("vexin-01", MONDAY) == []
    by_stop = {line.split(",")[1]: line for line in queued(ts_store, "visit")}
    assert set(by_stop) == {"stop=vesly", "stop=hacqueville"}
    assert fields(by_stop["stop=vesly"])["status"] == '"missed"'
    assert fields(by_stop["stop=hacqueville"])["status"] == '"pending"'

    ingest(ts_store, tracker, batches[4:])
    latest = {line.split(",")[1]: line for line in queued(ts_store, "visit")}
    assert set(latest) == {"stop=vesly", "stop=hacqueville"}
    assert fields(latest["stop=hacqueville"])["status"] == '"missed"'
    assert fields(latest["stop=hacqueville"])["held"] == "false"


def test_one_translator_for_every_record_and_nothing_queued_without_it(
    database_url: str, itinerary: Itinerary
) -> None:
    with pytest.raises(TypeError, match="no time-series point for object"):
        lines_of(object())
    # A store opened without the translator: storage emits the same records, none is queued.
    plain = Store.open(database_url)
    try:
        plain.load_fleet(itinerary)
        with plain.engine.connect() as conn:
            assert not points_wanted(conn)
        record = FridgeDay(
            date(2026, 1, 6), 1, 5.0, 5.0, H, timedelta(0), timedelta(0), 23 * H, 0,
            False, False, False,
        )  # fmt: skip
        with plain.engine.begin() as conn:
            coldchain_storage.save_day(
                conn, "vexin-01", record, zone="Europe/Paris", complete=True, basis="t", now=JAN_6
            )
        plain.save_batches(
            [(GpsBatch(vehicle="vexin-01", seq=0, samples=meridian_track(3, 10.0, MIN)), JAN_6)]
        )
        assert plain.count_pending_points() == 0
    finally:
        plain.close()
