"""Keeps every device reader running: one thread per reader, restarted when it fails.

A reader's ``run(stop)`` reads its device until ``stop`` is set. Whatever ends it
before that — any exception, from a parser, a library or a consumer of its samples, or
a return — is counted as ``reader_errors`` in the device's counters (which the status
reports carry), kept as the device's last error, logged with its traceback, and the
reader is run again after a pause: 1 s, doubling to 30 s while it keeps failing soon
after each start, back to 1 s once it has run for a minute. No exception ends a
reader's thread silently, and none reaches the agent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from edge_agent.counters import DeviceCounters

log = logging.getLogger(__name__)

FIRST_PAUSE_S: Final = 1.0
MAX_PAUSE_S: Final = 30.0
STEADY_AFTER_S: Final = 60.0
MAX_ERROR_TEXT: Final = 512

ReaderRun = Callable[[threading.Event], None]


@dataclass(frozen=True)
class _Supervised:
    device: str
    run: ReaderRun
    counters: DeviceCounters


class Supervisor:
    def __init__(
        self,
        first_pause_s: float = FIRST_PAUSE_S,
        max_pause_s: float = MAX_PAUSE_S,
        steady_after_s: float = STEADY_AFTER_S,
    ) -> None:
        self._first_pause_s = first_pause_s
        self._max_pause_s = max_pause_s
        self._steady_after_s = steady_after_s
        self._stop = threading.Event()
        self._readers: list[_Supervised] = []
        self._threads: list[threading.Thread] = []

    def add(self, device: str, run: ReaderRun, counters: DeviceCounters) -> None:
        """A reader to run once started; ``device`` names it in logs and errors."""
        self._readers.append(_Supervised(device, run, counters))

    def start(self) -> None:
        for reader in self._readers:
            thread = threading.Thread(
                target=self._keep_running,
                args=(reader,),
                name=f"{reader.device}-reader",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask every reader to stop and wait up to ``timeout_s`` for them all."""
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def alive(self) -> dict[str, bool]:
        """Whether each device's thread is running."""
        return {r.device: t.is_alive() for r, t in zip(self._readers, self._threads, strict=False)}

    def _keep_running(self, reader: _Supervised) -> None:
        pause = self._first_pause_s
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                reader.run(self._stop)
                if self._stop.is_set():
                    return
                error = "the reader stopped on its own"
                log.error("%s: %s; restarting in %.0f s", reader.device, error, pause)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.exception("%s reader failed; restarting in %.0f s", reader.device, pause)
            reader.counters.add("reader_errors")
            reader.counters.note_error(error[:MAX_ERROR_TEXT])
            if time.monotonic() - started >= self._steady_after_s:
                pause = self._first_pause_s
            if self._stop.wait(pause):
                return
            pause = min(pause * 2, self._max_pause_s)
