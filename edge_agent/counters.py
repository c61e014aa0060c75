"""Per-device counters, shared between a reader thread and the health report."""

from __future__ import annotations

import threading
from collections import Counter


class DeviceCounters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._last_error: str | None = None

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def get(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def note_error(self, text: str) -> None:
        """Keep the text of the last error that stopped the device's reader."""
        with self._lock:
            self._last_error = text

    @property
    def last_error(self) -> str | None:
        with self._lock:
            return self._last_error
