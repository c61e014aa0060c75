from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edge_agent.sampling import FixDecimator
from protocol.models import GpsSample

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def fix(seconds: float) -> GpsSample:
    return GpsSample(t=T0 + timedelta(seconds=seconds), lat=49.0, lon=1.0, fix_mode=3)


def test_ten_hertz_is_kept_at_one_per_second() -> None:
    decimator = FixDecimator(1.0)
    kept = [
        round(f.t.timestamp() - T0.timestamp(), 1)
        for f in map(fix, [i / 10 for i in range(35)])
        if decimator.keep(f)
    ]
    assert kept == [0.0, 1.0, 2.0, 3.0]


def test_epochs_slightly_early_are_not_skipped() -> None:
    decimator = FixDecimator(1.0)
    kept = [s for s in (0.0, 0.999, 1.998, 2.5, 3.0) if decimator.keep(fix(s))]
    assert kept == [0.0, 0.999, 1.998, 3.0]


def test_zero_keeps_every_fix_and_a_clock_step_back_restarts() -> None:
    assert all(FixDecimator(0).keep(fix(s)) for s in (0, 0.1, 0.2))
    decimator = FixDecimator(1.0)
    assert decimator.keep(fix(100))
    assert decimator.keep(fix(10))  # the receiver's clock stepped back: keep, start again
    assert not decimator.keep(fix(10.5))
