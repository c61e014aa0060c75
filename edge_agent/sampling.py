"""Which samples the agent keeps: a receiver may report faster than the fleet needs."""

from __future__ import annotations

from datetime import datetime, timedelta

from protocol.models import GpsSample

# A receiver's epochs are not exactly on the period (clock steps, a 10 Hz epoch at
# .999 s): a little slack keeps one fix per interval rather than one every two.
_SLACK = timedelta(milliseconds=50)


class FixDecimator:
    """Keeps one fix per ``interval_s`` of receiver time (0 keeps them all)."""

    def __init__(self, interval_s: float) -> None:
        self._interval = timedelta(seconds=interval_s)
        self._last: datetime | None = None

    def keep(self, fix: GpsSample) -> bool:
        if self._interval <= timedelta(0):
            return True
        if (
            self._last is not None
            and self._last - _SLACK < fix.t < self._last + self._interval - _SLACK
        ):
            return False
        self._last = fix.t
        return True
