from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ingest.alerts.rules import (
    ActiveAlert,
    Condition,
    HealthThresholds,
    VehicleHealth,
    fridge_condition,
    no_gps_fix,
    offline,
    plan,
    vehicle_conditions,
)
from ingest.coldchain.reconcile import StoredAlarm

NOW = datetime(2026, 1, 6, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
TH = HealthThresholds(
    offline_after=5 * MIN, no_fix_after=10 * MIN, low_soc_pct=20, low_soc_clear_pct=25
)


def health(**kw: object) -> VehicleHealth:
    base: dict[str, object] = {
        "vehicle": "vexin-01",
        "last_seen": NOW - MIN,
        "online": True,
        "status_t": NOW - MIN,
        "status_seen_at": NOW - MIN,
        "last_valid_fix": NOW - MIN,
        "latest_sample": NOW - MIN,
        "first_sample": None,
    }
    base.update(kw)
    return VehicleHealth(**base)  # type: ignore[arg-type]


def test_a_healthy_vehicle_has_no_condition() -> None:
    assert vehicle_conditions(health(soc_t=NOW, soc_pct=80.0), TH, NOW) == []


def test_offline_from_the_agents_status_and_from_silence() -> None:
    # The newest news is a status saying offline, composed before it was received.
    h = health(
        online=False,
        status_t=NOW - 3 * MIN,
        status_seen_at=NOW - 2 * MIN,
        latest_sample=NOW - 3 * MIN,
    )
    said = offline(h, TH, NOW)
    assert said is not None
    assert (said.since, said.detail["reason"]) == (NOW - 2 * MIN, "status")
    # Silence: exactly the timeout is not yet offline; a second more is.
    assert offline(health(last_seen=NOW - 5 * MIN), TH, NOW) is None
    silent = offline(health(last_seen=NOW - 5 * MIN - timedelta(seconds=1)), TH, NOW)
    assert silent is not None and silent.detail["reason"] == "silence"
    assert "nothing received for 5 min" in silent.message
    # Never heard of: nothing to say yet.
    assert offline(health(last_seen=None, online=None, status_t=None), TH, NOW) is None


def test_an_old_status_never_outweighs_fresher_samples() -> None:
    # A last will composed when the agent connected, or a status replayed or delivered
    # late: older than the samples received since, it says nothing of the link now.
    for status_t in (NOW - 180 * MIN, NOW - MIN - timedelta(microseconds=1)):
        h = health(online=False, status_t=status_t, status_seen_at=NOW, latest_sample=NOW - MIN)
        assert offline(h, TH, NOW) is None
        assert [c.kind for c in vehicle_conditions(h, TH, NOW)] == []
    # The freshest samples are old too: silence decides.
    quiet = health(
        online=False,
        status_t=NOW - 180 * MIN,
        last_seen=NOW - 6 * MIN,
        latest_sample=NOW - 6 * MIN,
    )
    found = offline(quiet, TH, NOW)
    assert found is not None and found.detail["reason"] == "silence"


def test_no_fix_is_judged_on_the_samples_own_times() -> None:
    # Ten minutes of telemetry without a fix is allowed; more is not.
    ok = health(last_valid_fix=NOW - 20 * MIN, latest_sample=NOW - 10 * MIN)
    assert no_gps_fix(ok, TH) is None
    lost = no_gps_fix(health(last_valid_fix=NOW - 20 * MIN, latest_sample=NOW - 9 * MIN), TH)
    assert lost is not None and lost.since == NOW - 20 * MIN
    # A bus that never had a fix: counted from its first sample.
    never = no_gps_fix(
        health(last_valid_fix=None, first_sample=NOW - 30 * MIN, latest_sample=NOW), TH
    )
    assert never is not None and never.since == NOW - 30 * MIN


def test_low_battery_has_hysteresis() -> None:
    def kinds(soc: float, active: bool) -> list[str]:
        h = health(soc_t=NOW, soc_pct=soc)
        return [c.kind for c in vehicle_conditions(h, TH, NOW, ["low_battery"] if active else [])]

    assert kinds(19.9, active=False) == ["low_battery"]
    assert kinds(20.0, active=False) == []
    # Once raised, it holds until 25 %.
    assert kinds(24.9, active=True) == ["low_battery"]
    assert kinds(25.0, active=True) == []


def test_thresholds_are_checked() -> None:
    with pytest.raises(ValueError, match="clear at or above"):
        HealthThresholds(5 * MIN, 10 * MIN, low_soc_pct=30, low_soc_clear_pct=20)


def condition(kind: str = "offline", subject: str = "", **kw: object) -> Condition:
    return Condition("vexin-01", kind, subject, NOW - MIN, "m", **kw)  # type: ignore[arg-type]


SCOPE = [("vexin-01", "offline"), ("vexin-01", "fridge_heat")]


def test_a_condition_is_raised_once_and_cleared_when_it_ends() -> None:
    first = plan([condition()], [], scope=SCOPE, known=set(), now=NOW)
    assert [c.kind for c in first.raises] == ["offline"] and first.clears == ()
    active = [ActiveAlert(1, "vexin-01", "offline", "")]
    assert plan([condition()], active, scope=SCOPE, known=set(), now=NOW).raises == ()
    cleared = plan([], active, scope=SCOPE, known=set(), now=NOW)
    assert [(c.alert_id, c.ended) for c in cleared.clears] == [(1, NOW)]
    # Outside the evaluated scope, an active alert is left alone.
    assert plan([], active, scope=[], known=set(), now=NOW).clears == ()


def test_a_fridge_alarm_is_alerted_once_even_when_found_after_it_ended() -> None:
    ended = condition("fridge_heat", "12", ended=NOW - 5 * MIN, repeatable=False)
    first = plan([ended], [], scope=SCOPE, known=set(), now=NOW)
    assert [c.ended for c in first.raises] == [NOW - 5 * MIN]
    known = {("vexin-01", "fridge_heat", "12")}
    assert plan([ended], [], scope=SCOPE, known=known, now=NOW).raises == ()
    ongoing = condition("fridge_heat", "12", repeatable=False)
    assert plan([ongoing], [], scope=SCOPE, known=known, now=NOW).raises == ()
    active = [ActiveAlert(5, "vexin-01", "fridge_heat", "12")]
    done = plan([ended], active, scope=SCOPE, known=known, now=NOW)
    assert [(c.alert_id, c.ended) for c in done.clears] == [(5, NOW - 5 * MIN)]


def test_a_fridge_alarm_becomes_a_condition_while_its_run_goes_on() -> None:
    alarm = StoredAlarm(
        id=9,
        kind="freeze",
        key="freeze@x",
        run_start=NOW - 70 * MIN,
        run_end=NOW,
        raised_at=NOW - 10 * MIN,
        peak_c=-1.5,
        ongoing=True,
        cut_by_gap=False,
        withdrawn=False,
    )
    c = fridge_condition("vexin-01", alarm)
    assert c is not None
    assert (c.kind, c.subject, c.since, c.ended) == ("fridge_freeze", "9", NOW - 10 * MIN, None)
    assert "lowest -1.5 °C" in c.message
    over = fridge_condition("vexin-01", replace(alarm, ongoing=False))
    assert over is not None and over.ended == NOW
    assert fridge_condition("vexin-01", replace(alarm, withdrawn=True)) is None
