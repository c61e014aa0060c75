from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from ingest.punctuality.kpis import VisitResult, figures, punctuality_figures
from ingest.punctuality.ledger import (
    ChangeRefusedError,
    CoordinatorChange,
    VisitFacts,
    check_change,
    local_time,
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


def test_messages_give_local_times_and_say_so() -> None:
    # 08:06 UTC is 09:06 in Paris in November (UTC+01:00).
    future = CoordinatorChange("correct", "c", ARRIVE, "x", ARRIVE + 6 * MIN)
    with pytest.raises(ChangeRefusedError) as refused:
        check_change(facts(), [], future)
    assert "2026-11-16 09:06 Europe/Paris (UTC+01:00) is in the future" in str(refused.value)
    assert "UTC is" not in str(refused.value)
    with pytest.raises(ChangeRefusedError, match=r"took place \(arrival 2026-11-16 09:01 Europe"):
        check_change(facts(ARRIVE + MIN), [], CoordinatorChange("cancel", "c", LATER, "snow"))
    far = CoordinatorChange("correct", "c", LATER + 48 * 60 * MIN, "x", ARRIVE + 24 * 60 * MIN)
    with pytest.raises(
        ChangeRefusedError, match=r"\(2026-11-16 09:00 Europe/Paris \(UTC\+01:00\) to"
    ):
        check_change(facts(), [], far)
    backwards = CoordinatorChange("correct", "c", LATER, "x", ARRIVE + MIN, ARRIVE)
    with pytest.raises(ChangeRefusedError, match="departure 2026-11-16 09:00 Europe/Paris"):
        check_change(facts(), [], backwards)
    # Summer time: the same clock time is UTC+02:00.
    summer = datetime(2027, 7, 5, 7, 5, tzinfo=UTC)
    assert local_time(summer) == "2027-07-05 09:05 Europe/Paris (UTC+02:00)"


def test_a_correction_outside_the_matching_window_needs_force() -> None:
    # "09:05+05:00" typed for "09:05+01:00": 04:05 UTC, four hours before the arrival.
    typo = ARRIVE - 235 * MIN
    change = CoordinatorChange("correct", "c", LATER, "driver's log", typo)
    with pytest.raises(ChangeRefusedError, match="outside the visit's matching window") as refused:
        check_change(facts(), [], change)
    assert not refused.value.conflict
    assert "force" in str(refused.value) and "07:00 Europe/Paris" in str(refused.value)
    forced = check_change(facts(), [], replace(change, force=True))
    assert forced.arrival == typo
    # The window's ends are inside it; the visit's own window start is used when known.
    assert check_change(facts(), [], replace(change, arrival=ARRIVE - 120 * MIN)).arrival
    assert check_change(facts(), [], replace(change, arrival=NOON)).arrival == NOON
    with pytest.raises(ChangeRefusedError, match="matching window"):
        check_change(facts(), [], replace(change, arrival=NOON + timedelta(seconds=1)))
    narrow = replace(facts(), opens_at=ARRIVE - 30 * MIN)
    with pytest.raises(ChangeRefusedError, match="matching window"):
        check_change(narrow, [], replace(change, arrival=ARRIVE - 31 * MIN))
    # Force does not lift the 12-hour limit.
    with pytest.raises(ChangeRefusedError, match="more than 12 h"):
        check_change(facts(), [], replace(change, arrival=ARRIVE - 13 * 60 * MIN, force=True))


def test_confirming_twice_records_one_confirmation_with_its_note() -> None:
    first = check_change(
        facts(ARRIVE), [], CoordinatorChange("confirm", "camille", NOON, note=" called the GP ")
    )
    assert (first.note, first.reason, first.arrival) == ("called the GP", None, ARRIVE)
    again = check_change(
        facts(ARRIVE), [first], CoordinatorChange("confirm", "dominique", LATER, note="again")
    )
    assert again is first  # nothing new to record
    # A correction since: the corrected arrival is confirmed anew.
    corrected = CoordinatorChange("correct", "c", LATER, "log", ARRIVE + 3 * MIN)
    after = check_change(
        facts(ARRIVE), [first, corrected], CoordinatorChange("confirm", "dominique", LATER)
    )
    assert after is not first and after.arrival == ARRIVE + 3 * MIN
    # A detection that moved since the confirmation is confirmed anew too.
    moved = check_change(facts(ARRIVE + MIN), [first], CoordinatorChange("confirm", "d", LATER))
    assert moved is not first and moved.arrival == ARRIVE + MIN


def test_an_estimated_arrival_is_classed_when_its_bounds_agree() -> None:
    def estimated(earliest: timedelta, t: timedelta, latest: timedelta) -> VisitFacts:
        return replace(
            facts(ARRIVE + t),
            detected_arrival_earliest=ARRIVE + earliest,
            detected_arrival_latest=ARRIVE + latest,
        )

    sure = visit_state(estimated(-20 * MIN, -12 * MIN, -6 * MIN), [], LATER)
    assert (sure.status, sure.status_certain, sure.possible_statuses) == (
        "early",
        True,
        ("early",),
    )
    assert sure.arrival_estimated and sure.arrival_earliest == ARRIVE - 20 * MIN
    unsure = visit_state(estimated(-7 * MIN, -2 * MIN, 8 * MIN), [], LATER)
    assert unsure.status == "on_time" and not unsure.status_certain
    assert unsure.possible_statuses == ("early", "on_time", "late")
    observed = visit_state(facts(ARRIVE), [], LATER)
    assert observed.status_certain and not observed.arrival_estimated
    # A coordinator's correction replaces the estimate and its uncertainty.
    fixed = CoordinatorChange("correct", "c", LATER, "log", ARRIVE + MIN)
    corrected = visit_state(estimated(-7 * MIN, -2 * MIN, 8 * MIN), [fixed], LATER)
    assert corrected.status_certain and corrected.arrival_earliest is None
