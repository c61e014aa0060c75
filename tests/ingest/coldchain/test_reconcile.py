from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.coldchain.reconcile import StoredAlarm, reconcile
from ingest.coldchain.rules import ColdChainConfig, FridgeAlarm, Reading, assess

T0 = datetime(2026, 1, 6, 6, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def warm(start_min: int, count: int) -> list[Reading]:
    return [Reading(T0 + (start_min + i) * MIN, 9.0) for i in range(count)] + [
        Reading(T0 + (start_min + count) * MIN, 5.0)
    ]


def stored(alarm_id: int, a: FridgeAlarm, *, withdrawn: bool = False) -> StoredAlarm:
    return StoredAlarm(
        id=alarm_id,
        kind=a.kind,
        key=a.key,
        run_start=a.run.start,
        run_end=a.run.end,
        raised_at=a.raised_at,
        peak_c=a.peak_c,
        ongoing=a.run.ongoing,
        cut_by_gap=a.run.cut_by_gap,
        withdrawn=withdrawn,
    )


CONFIG = ColdChainConfig()


def test_the_same_alarm_is_unchanged_and_a_new_one_inserted() -> None:
    (first,) = assess(warm(0, 40), CONFIG).alarms
    report = assess([*warm(0, 40), *warm(100, 45)], CONFIG)
    plan = reconcile([stored(7, first)], report.alarms)
    assert plan.unchanged == (7,)
    assert [a.run.start for a in plan.insert] == [T0 + 100 * MIN]
    assert (plan.update, plan.withdraw) == ((), ())


def test_an_alarm_whose_run_moved_keeps_its_identity() -> None:
    (shown,) = assess(warm(10, 40), CONFIG).alarms
    # Earlier readings arrive late: the run started at 06:00, not 06:10.
    (now,) = assess(warm(0, 50), CONFIG).alarms
    assert now.key != shown.key
    plan = reconcile([stored(3, shown)], [now])
    assert plan.update == ((3, now),)
    assert plan.insert == () and plan.withdraw == ()


def test_an_alarm_the_readings_no_longer_show_is_withdrawn_once() -> None:
    (shown,) = assess(warm(0, 40), CONFIG).alarms
    plan = reconcile([stored(4, shown)], [])
    assert plan.withdraw == (4,)
    assert reconcile([stored(4, shown, withdrawn=True)], []).empty


def test_a_withdrawn_alarm_comes_back_under_its_own_key() -> None:
    (shown,) = assess(warm(0, 40), CONFIG).alarms
    plan = reconcile([stored(4, shown, withdrawn=True)], [shown])
    assert plan.update == ((4, shown),)


def test_two_runs_merged_by_a_filled_gap_keep_the_overlapping_alarm() -> None:
    before = assess(warm(0, 40), CONFIG).alarms + assess(warm(41, 40), CONFIG).alarms
    # The reading at 06:40 was back in range; late data shows it was a sensor glitch.
    (merged,) = assess(warm(0, 81), CONFIG).alarms
    plan = reconcile([stored(1, before[0]), stored(2, before[1])], [merged])
    assert [i for i, _ in plan.update] == [1]
    assert plan.withdraw == (2,)
