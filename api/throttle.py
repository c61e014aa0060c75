"""Counting requests per client address (or account) in a moving window (the ``limits``
package), and the 429 with ``Retry-After`` once it is past its allowance: for the public
pages (every request counts), for wrong tokens and wrong passwords (only failures count)."""

from __future__ import annotations

import time

from fastapi import HTTPException
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


class PerMinute:
    def __init__(self, allowed: int, name: str, refusal: str, minutes: int = 1) -> None:
        """``allowed`` in a moving window of ``minutes``; ``refusal``: the 429's detail,
        with ``{wait}`` for the seconds to wait."""
        self._item = RateLimitItemPerMinute(allowed, minutes)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._name = name
        self._refusal = refusal

    def count(self, address: str) -> None:
        """One more for ``address``; 429 if that is past its allowance."""
        if not self._limiter.hit(self._item, self._name, address):
            self.refuse(address)

    def check(self, address: str) -> None:
        """429 if ``address`` is already past its allowance (counts nothing)."""
        if not self._limiter.test(self._item, self._name, address):
            self.refuse(address)

    def refuse(self, address: str) -> None:
        reset = self._limiter.get_window_stats(self._item, self._name, address).reset_time
        wait = max(1, int(reset - time.time()) + 1)
        raise HTTPException(
            status_code=429,
            detail=self._refusal.format(wait=wait),
            headers={"Retry-After": str(wait)},
        )

    def record(self, address: str) -> None:
        """One more for ``address``, without refusing."""
        self._limiter.hit(self._item, self._name, address)
