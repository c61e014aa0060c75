"""A real HTTP client reading the API's Server-Sent Events (httpx streaming) in a thread."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class ServerEvent:
    id: int | None
    event: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


class EventStream:
    """Connects to ``/api/v1/live`` with a bearer token and keeps every event received.
    The server's pings (``: ping``) are counted; they also let the reader see ``close()``."""

    def __init__(self, base_url: str, token: str, last_event_id: int | None = None) -> None:
        self.base_url = base_url
        self.token = token
        self.last_event_id = last_event_id
        self.events: list[ServerEvent] = []
        self.pings = 0
        self.status: int | None = None
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def __enter__(self) -> EventStream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _read(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = str(self.last_event_id)
        try:
            with (
                httpx.Client(base_url=self.base_url, timeout=httpx.Timeout(10.0)) as client,
                client.stream("GET", "/api/v1/live", headers=headers) as response,
            ):
                self.status = response.status_code
                fields: dict[str, str] = {}
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith(":"):
                        self.pings += 1
                    elif line == "":
                        if "event" in fields or "data" in fields:
                            event_id = fields.get("id")
                            with self._lock:
                                self.events.append(
                                    ServerEvent(
                                        int(event_id) if event_id else None,
                                        fields.get("event", "message"),
                                        fields.get("data", ""),
                                    )
                                )
                        fields = {}
                    else:
                        name, _, value = line.partition(":")
                        value = value.removeprefix(" ")
                        if name == "data" and name in fields:
                            value = fields[name] + "\n" + value
                        fields[name] = value
        except Exception as exc:  # reported to the test through .error
            self.error = exc

    def received(self, kind: str | None = None) -> list[ServerEvent]:
        with self._lock:
            return [e for e in self.events if kind is None or e.event == kind]

    def wait_for(
        self,
        predicate: Callable[[ServerEvent], bool],
        *,
        after: int = 0,
        timeout: float = 20.0,
        what: str = "an event",
    ) -> ServerEvent:
        """The first event at index ``after`` or later for which ``predicate`` holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                found = [e for e in self.events[after:] if predicate(e)]
            if found:
                return found[0]
            if self.error is not None:
                raise AssertionError(f"the stream failed: {self.error!r}")
            time.sleep(0.02)
        raise AssertionError(f"no {what} within {timeout} s; got {[e.event for e in self.events]}")
