from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from ingest.punctuality.kpis import VisitResult, figures, punctuality_figures
from ingest.punctuality.ledger import (
    ChangeRefusedError,
    CoordinatorChange,
    VisitFacts,
    check_change,
    visit_state,
)

ARRIVE = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
NOON = datetime(2026, 11, 16, 11, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 16, 18, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def facts(detected: datetime | None = None, cancelled: str | None = None) -> VisitFacts:
    return VisitFacts(
        visit_id="vexin-01:2026-11-16:vesly",
        scheduled_arrival=ARRIVE,
        scheduled_departure=NOON,
        closes_at=NOON,
        on_time_from=-5 * MIN,
        on_time_until=5 * MIN,
        timetable_cancelled_reason=cancelled,
        detected_arrival=detected,
    )


def test_status_follows_the_effective_arrival() -> None:
    assert visit_state(facts(), [], ARRIVE).status == "pending"
    assert visit_state(facts(), [], NOON).status == "missed"  # the window closed
    assert visit_state(facts(ARRIVE - 6 * MIN), [], LATER).status == "early"
    assert visit_state(facts(ARRIVE + 5 * MIN), [], LATER).status == "on_time"
    assert visit_state(facts(ARRIVE + 5 * MIN + timedelta(seconds=1)), [], LATER).status == "late"
    assert visit_state(facts(cancelled="public holiday"), [], LATER).status == "cancelled"

    fix = CoordinatorChange("correct", "camille", LATER, "log", ARRIVE + 20 * MIN)
    state = visit_state(facts(ARRIVE), [fix], LATER)
    assert (state.status, state.arrival, state.arrival_source) == (
        "late",
        ARRIVE + 20 * MIN,
        "corrected",
    )
    assert state.delay == 20 * MIN
    assert (state.confirmed_arrival, state.confirmed_by) == (ARRIVE + 20 * MIN, "camille")


def test_checks_record_what_is_confirmed_and_refuse_contradictions() -> None:
    confirm = check_change(facts(ARRIVE + MIN), [], CoordinatorChange("confirm", "c", LATER))
    assert confirm.arrival == ARRIVE + MIN

    with pytest.raises(ChangeRefusedError, match="no arrival to confirm") as refused:
        check_change(facts(), [], CoordinatorChange("confirm", "c", LATER))
    assert refused.value.conflict

    cancel = CoordinatorChange("cancel", "c", LATER, "snow")
    with pytest.raises(ChangeRefusedError, match="took place") as refused:
        check_change(facts(ARRIVE), [], cancel)
    assert refused.value.conflict
    recorded = check_change(facts(), [], cancel)
    with pytest.raises(ChangeRefusedError, match=r"is cancelled \(snow\)"):
        check_change(facts(), [recorded], cancel)

    with pytest.raises(ChangeRefusedError, match="in the future") as refused:
        check_change(facts(), [], CoordinatorChange("correct", "c", ARRIVE, "x", ARRIVE + MIN * 9))
    assert not refused.value.conflict
    with pytest.raises(ChangeRefusedError, match="needs a reason"):
        check_change(facts(), [], CoordinatorChange("cancel", "c", LATER, " "))


def test_figures_rate_only_the_visits_that_were_due() -> None:
    day = date(2026, 11, 16)
    results = [
        VisitResult("vexin-01", "vesly", day, "on_time", 2 * MIN),
        VisitResult("vexin-01", "vesly", day + timedelta(days=7), "late", 20 * MIN),
        VisitResult("vexin-01", "hacqueville", day, "early", -10 * MIN),
        VisitResult("vexin-01", "hacqueville", day, "missed", None),
        VisitResult("caux-01", "yvetot", day + timedelta(days=1), "cancelled", None),
        VisitResult("caux-01", "yvetot", day + timedelta(days=1), "pending", None),
    ]
    total = figures("all", results)
    assert (total.visits, total.held, total.missed, total.cancelled, total.pending) == (
        6,
        3,
        1,
        1,
        1,
    )
    assert total.on_time_rate == 0.25
    assert total.mean_delay_min == 4.0
    assert total.p90_delay_min == pytest.approx(2 + 0.8 * 18)
    assert [f.group for f in punctuality_figures(results, "weekday")] == ["monday", "tuesday"]
    assert [f.group for f in punctuality_figures(results, "week")] == ["2026-W47", "2026-W48"]
    by_stop = {f.group: f for f in punctuality_figures(results, "stop")}
    assert by_stop["yvetot"].on_time_rate is None
    assert by_stop["vesly"].p90_delay_min == pytest.approx(2 + 0.9 * 18)
    with pytest.raises(ValueError, match="cannot group by 'colour'"):
        punctuality_figures(results, "colour")  # type: ignore[arg-type]


def test_patients_seen_are_the_latest_count_of_a_held_visit() -> None:
    held = facts(ARRIVE + MIN)
    first = check_change(
        held, [], CoordinatorChange("attendance", "a", LATER, " ", patients_seen=12)
    )
    assert (first.patients_seen, first.reason) == (12, None)
    second = CoordinatorChange("attendance", "b", LATER, "recount", patients_seen=0)
    state = visit_state(held, [first, check_change(held, [first], second)], LATER)
    assert (state.patients_seen, state.patients_seen_by, state.status) == (0, "b", "on_time")
    assert state.cancelled_reason is None

    for patients, conflict, words in [
        (None, False, "a count is needed"),
        (-1, False, "not between 0 and 200"),
        (201, False, "not between 0 and 200"),
    ]:
        bad = CoordinatorChange("attendance", "a", LATER, patients_seen=patients)
        with pytest.raises(ChangeRefusedError, match=words) as refused:
            check_change(held, [], bad)
        assert refused.value.conflict is conflict
    count = CoordinatorChange("attendance", "a", LATER, patients_seen=3)
    with pytest.raises(ChangeRefusedError, match=r"has no arrival \(missed\)") as refused:
        check_change(facts(), [], count)
    assert refused.value.conflict
    with pytest.raises(ChangeRefusedError, match="is cancelled") as refused:
        check_change(facts(ARRIVE, cancelled="public holiday"), [], count)
    assert refused.value.conflict
