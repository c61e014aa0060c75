"""An excursion counts once, on the local day it started, in the stored daily records and
their time-series points, whatever order the readings arrive in and however often a day
is rebuilt; the minutes out of range and the alarms stay split over the days they cover.

Every expectation is also checked against a recomputation of all the readings at once
(``assess`` then ``daily_records``), the pharmacist's logger's view.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from ingest.coldchain import storage
from ingest.coldchain.daily import FridgeDay, daily_records
from ingest.coldchain.rules import ColdChainConfig, Reading, assess
from ingest.domain import IngestDomain
from ingest.itinerary import Itinerary
from ingest.local_days import LocalDay
from ingest.points import lines_of
from ingest.settings import DomainSettings
from ingest.store import Store
from protocol import FridgeBatch, FridgeSample
from protocol.clock import ManualClock
from tests.support.domain import domain_ingestor, feed

PARIS = ZoneInfo("Europe/Paris")
MIN = timedelta(minutes=1)
STEP = 5 * MIN  # a logger's usual period: local midnight falls on a reading
VEHICLE = "vexin-01"
CONFIG = ColdChainConfig()  # DomainSettings' defaults: 2–8 °C, excursions over 15 min


def local(d: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(d, time(hh, mm), tzinfo=PARIS).astimezone(UTC)


def midnight(d: date) -> datetime:
    return LocalDay.of(d, PARIS).start


@dataclass(frozen=True)
class Span:
    start: datetime
    end: datetime  # exclusive
    temp_c: float


def readings(spans: Sequence[Span], step: timedelta = STEP) -> list[FridgeSample]:
    out: list[FridgeSample] = []
    for span in spans:
        t = span.start
        while t < span.end:
            out.append(FridgeSample(t=t, temp_c=span.temp_c))
            t += step
    return out


@pytest.fixture
def ts_store(database_url: str, itinerary: Itinerary) -> Iterator[Store]:
    s = Store.open(database_url, points=lines_of)
    s.load_fleet(itinerary)
    yield s
    s.close()


def ingest(
    store: Store,
    itinerary: Itinerary,
    chunks: Sequence[Sequence[FridgeSample]],
    now: datetime,
    *,
    rebuild_between: bool = False,
) -> IngestDomain:
    """Feed the chunks through the pipeline in this order, as batches; with
    ``rebuild_between`` the daily records are rebuilt after each one."""
    domain, ingestor = domain_ingestor(store, itinerary, DomainSettings(), ManualClock(now))
    for seq, chunk in enumerate(chunks):
        feed(ingestor, [FridgeBatch(vehicle=VEHICLE, seq=seq, samples=list(chunk))], now)
        if rebuild_between:
            domain.catch_up()
    domain.catch_up()
    return domain


def stored_days(store: Store, first: date, last: date) -> dict[date, FridgeDay]:
    return {s.record.day: s.record for s in storage.days(store.engine, VEHICLE, first, last)}


def recomputed(samples: Sequence[FridgeSample], days: Sequence[date]) -> dict[date, FridgeDay]:
    """The whole history at once; observed to the end of the last day."""
    report = assess([Reading(s.t, s.temp_c) for s in samples], CONFIG)
    until = LocalDay.of(max(days), PARIS).end
    return {r.day: r for r in daily_records(report, CONFIG, PARIS, days=days, until=until)}


def day_points(store: Store) -> dict[str, dict[str, str]]:
    """The last queued ``fridge_day`` point of each day, by its timestamp (ms)."""
    points: dict[str, dict[str, str]] = {}
    for _, line in store.pending_points(100_000):
        if line.startswith("fridge_day,"):
            _, fields, stamp = line.split(" ")
            points[stamp] = dict(f.split("=", 1) for f in fields.split(","))
    return points


def ms(t: datetime) -> str:
    return str(int(t.timestamp() * 1000))


def alarms(store: Store) -> list[tuple[str, datetime, datetime]]:
    return sorted(
        (a.kind, a.run_start, a.run_end)
        for a in storage.list_alarms(store.engine, vehicle_ids=[VEHICLE])
    )


def check_days(
    store: Store,
    samples: Sequence[FridgeSample],
    expected: dict[date, tuple[int, timedelta, timedelta]],
) -> None:
    """Per day (excursions, above, no data): stored, in its point and recomputed alike."""
    days = sorted(expected)
    whole = recomputed(samples, days)
    stored = stored_days(store, days[0], days[-1])
    points = day_points(store)
    for d, (excursions, above, no_data) in expected.items():
        record = stored[d]
        assert (record.excursions, record.above, record.no_data) == (excursions, above, no_data), d
        assert record == whole[d], d
        point = points[ms(midnight(d))]
        assert point["excursions"] == f"{excursions}i", d
        assert float(point["above_min"]) == pytest.approx(above / MIN), d
    assert sum(stored[d].excursions for d in days) == sum(e for e, _, _ in expected.values())


# --- an ordinary winter night -------------------------------------------------------------

JAN_6, JAN_7 = date(2026, 1, 6), date(2026, 1, 7)


def across_midnight() -> list[FridgeSample]:
    """In range, then 10 °C from 23:00 to 01:00 local, then in range to the day's end."""
    return readings(
        [
            Span(midnight(JAN_6), local(JAN_6, 23), 5.0),
            Span(local(JAN_6, 23), local(JAN_7, 1), 10.0),
            Span(local(JAN_7, 1), midnight(JAN_7 + timedelta(days=1)) + STEP, 5.0),
        ]
    )


def test_an_excursion_across_midnight_counts_on_the_day_it_started(
    ts_store: Store, itinerary: Itinerary
) -> None:
    samples = across_midnight()
    ingest(ts_store, itinerary, [samples], midnight(JAN_7) + timedelta(days=2))
    check_days(
        ts_store,
        samples,
        {JAN_6: (1, 60 * MIN, timedelta(0)), JAN_7: (0, 60 * MIN, timedelta(0))},
    )
    # The early warning (30 min above 8 °C) is one alarm, shown on both days.
    assert alarms(ts_store) == [("early_warning", local(JAN_6, 23), local(JAN_7, 1))]
    days = stored_days(ts_store, JAN_6, JAN_7)
    assert days[JAN_6].early_warning and days[JAN_7].early_warning
    assert not days[JAN_7].heat_alarm


@pytest.mark.parametrize(
    "order",
    ["next-day-first", "day-by-day", "replayed-twice"],
)
def test_the_count_holds_whatever_the_order_and_however_often_the_days_are_rebuilt(
    ts_store: Store, itinerary: Itinerary, order: str
) -> None:
    samples = across_midnight()
    before = [s for s in samples if s.t < midnight(JAN_7)]
    after = [s for s in samples if s.t >= midnight(JAN_7)]
    chunks = {
        # The next day's readings first, its record built; the evening comes late.
        "next-day-first": [after, before],
        "day-by-day": [before, after],
        # The bus's outbox sends everything again (duplicates), after the records exist.
        "replayed-twice": [samples, samples],
    }[order]
    now = midnight(JAN_7) + timedelta(days=2)
    ingest(ts_store, itinerary, chunks, now, rebuild_between=True)
    expected = {JAN_6: (1, 60 * MIN, timedelta(0)), JAN_7: (0, 60 * MIN, timedelta(0))}
    check_days(ts_store, samples, expected)

    # A restart on new rules (the basis changes) rebuilds every day: the same count.
    settings = DomainSettings.model_validate({"fridge": {"excursion_after_min": 20.0}})
    domain, _ = domain_ingestor(ts_store, itinerary, settings, ManualClock(now))
    domain.catch_up()
    check_days(ts_store, samples, expected)
    assert alarms(ts_store) == [("early_warning", local(JAN_6, 23), local(JAN_7, 1))]


def test_an_excursion_starting_exactly_at_midnight_counts_on_the_new_day(
    ts_store: Store, itinerary: Itinerary
) -> None:
    samples = readings(
        [
            Span(midnight(JAN_6), midnight(JAN_7), 5.0),
            Span(midnight(JAN_7), local(JAN_7, 0, 40), 10.0),
            Span(local(JAN_7, 0, 40), midnight(JAN_7 + timedelta(days=1)) + STEP, 5.0),
        ]
    )
    ingest(ts_store, itinerary, [samples], midnight(JAN_7) + timedelta(days=2))
    check_days(
        ts_store,
        samples,
        {JAN_6: (0, timedelta(0), timedelta(0)), JAN_7: (1, 40 * MIN, timedelta(0))},
    )
    assert alarms(ts_store) == [("early_warning", midnight(JAN_7), local(JAN_7, 0, 40))]
    days = stored_days(ts_store, JAN_6, JAN_7)
    assert not days[JAN_6].early_warning and days[JAN_7].early_warning


def test_a_data_gap_at_midnight_ends_the_excursion_and_the_next_readings_start_another(
    ts_store: Store, itinerary: Itinerary
) -> None:
    # 10 °C from 23:00; nothing from 23:50 to 00:20 (more than the 15 min spacing); still
    # 10 °C from 00:20 to 01:00. Nobody saw the fridge through the gap: two excursions,
    # one on each day, and no data for the gap.
    samples = readings(
        [
            Span(midnight(JAN_6), local(JAN_6, 23), 5.0),
            Span(local(JAN_6, 23), local(JAN_6, 23, 55), 10.0),
            Span(local(JAN_7, 0, 20), local(JAN_7, 1), 10.0),
            Span(local(JAN_7, 1), midnight(JAN_7 + timedelta(days=1)) + STEP, 5.0),
        ]
    )
    ingest(ts_store, itinerary, [samples], midnight(JAN_7) + timedelta(days=2))
    check_days(
        ts_store,
        samples,
        {JAN_6: (1, 50 * MIN, 10 * MIN), JAN_7: (1, 40 * MIN, 20 * MIN)},
    )
    # The alarms follow the same rule: each run is an early warning of its own.
    assert alarms(ts_store) == [
        ("early_warning", local(JAN_6, 23), local(JAN_6, 23, 50)),
        ("early_warning", local(JAN_7, 0, 20), local(JAN_7, 1)),
    ]


def test_after_a_gap_at_midnight_a_short_run_is_no_excursion(
    ts_store: Store, itinerary: Itinerary
) -> None:
    samples = readings(
        [
            Span(midnight(JAN_6), local(JAN_6, 23), 5.0),
            Span(local(JAN_6, 23), local(JAN_6, 23, 55), 10.0),
            Span(local(JAN_7, 0, 20), local(JAN_7, 0, 30), 10.0),  # 10 min: not over 15
            Span(local(JAN_7, 0, 30), midnight(JAN_7 + timedelta(days=1)) + STEP, 5.0),
        ]
    )
    ingest(ts_store, itinerary, [samples], midnight(JAN_7) + timedelta(days=2))
    check_days(
        ts_store,
        samples,
        {JAN_6: (1, 50 * MIN, 10 * MIN), JAN_7: (0, 10 * MIN, 20 * MIN)},
    )


def test_readings_off_the_minute_grid_still_count_once(
    ts_store: Store, itinerary: Itinerary
) -> None:
    # Every 7 minutes from 20:03 UTC: no reading at midnight, the day opens on one held
    # from the evening before.
    start = midnight(JAN_6) + 3 * MIN
    samples = readings(
        [
            Span(start, local(JAN_6, 23, 10), 5.0),
            Span(local(JAN_6, 23, 10), local(JAN_7, 1, 10), 1.0),
            Span(local(JAN_7, 1, 10), midnight(JAN_7 + timedelta(days=1)) + STEP, 5.0),
        ],
        step=7 * MIN,
    )
    ingest(ts_store, itinerary, [samples], midnight(JAN_7) + timedelta(days=2))
    whole = recomputed(samples, [JAN_6, JAN_7])
    stored = stored_days(ts_store, JAN_6, JAN_7)
    assert [stored[d].excursions for d in (JAN_6, JAN_7)] == [1, 0]
    assert stored == whole
    assert stored[JAN_6].below + stored[JAN_7].below > 115 * MIN
    assert alarms(ts_store) == []  # 1 °C is cold, not frozen


# --- the days the clocks change -----------------------------------------------------------


# Last Sundays of March (23 hours: 02:00 becomes 03:00) and October (25 hours).
@pytest.mark.parametrize(
    ("changing", "hours"),
    [(date(2026, 3, 29), 23), (date(2026, 10, 25), 25)],
    ids=["23-hour-day", "25-hour-day"],
)
def test_excursions_across_both_midnights_of_a_day_the_clocks_change(
    ts_store: Store, itinerary: Itinerary, changing: date, hours: int
) -> None:
    before, after = changing - timedelta(days=1), changing + timedelta(days=1)
    assert LocalDay.of(changing, PARIS).length == timedelta(hours=hours)
    # Warm from 23:30 to 00:45 into the changing day, and cold from 23:20 on it to 00:35
    # on the next; in range otherwise.
    samples = readings(
        [
            Span(midnight(before), local(before, 23, 30), 5.0),
            Span(local(before, 23, 30), local(changing, 0, 45), 9.0),
            Span(local(changing, 0, 45), local(changing, 23, 20), 5.0),
            Span(local(changing, 23, 20), local(after, 0, 35), 1.5),
            Span(local(after, 0, 35), midnight(after + timedelta(days=1)) + STEP, 5.0),
        ]
    )
    ingest(ts_store, itinerary, [samples], midnight(after) + timedelta(days=2))
    check_days(
        ts_store,
        samples,
        {
            before: (1, 30 * MIN, timedelta(0)),
            changing: (1, 45 * MIN, timedelta(0)),
            after: (0, timedelta(0), timedelta(0)),
        },
    )
    days = stored_days(ts_store, before, after)
    assert days[changing].in_range + days[changing].above + days[changing].below == timedelta(
        hours=hours
    )
    assert (days[changing].below, days[after].below) == (40 * MIN, 35 * MIN)
    assert alarms(ts_store) == [("early_warning", local(before, 23, 30), local(changing, 0, 45))]
    # Raised when the run reached 30 min, at midnight: it marks the changing day only.
    (warning,) = storage.list_alarms(ts_store.engine, vehicle_ids=[VEHICLE])
    assert warning.raised_at == midnight(changing)
    assert [days[d].early_warning for d in (before, changing, after)] == [False, True, False]
