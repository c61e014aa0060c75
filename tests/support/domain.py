"""The ingest with its domain (cold chain, daily records, alerts), fed directly or
through a broker, and a webhook receiver that is a real HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from firmware_config.agent import BrokerConfig
from ingest.domain import IngestDomain
from ingest.itinerary import Itinerary
from ingest.pipeline import Ingestor, Outcome
from ingest.settings import DomainSettings
from ingest.store import Store
from ingest.subscriber import IngestSubscriber
from protocol import Batch, encode, topic_for
from protocol.clock import Clock


def feed(ingestor: Ingestor, batches: Sequence[Batch], received_at: datetime) -> list[Outcome]:
    """Through the real pipeline (validation, store, observers), without a broker."""
    return [
        ingestor.handle(topic_for(b.vehicle, b.stream), encode(b), received_at) for b in batches
    ]


def domain_ingestor(
    store: Store, itinerary: Itinerary, settings: DomainSettings, clock: Clock | None = None
) -> tuple[IngestDomain, Ingestor]:
    domain = IngestDomain(store, itinerary, settings, clock)
    return domain, Ingestor(store, observers=domain.observers)


@contextmanager
def running_domain_ingest(
    store: Store,
    itinerary: Itinerary,
    broker_url: str,
    settings: DomainSettings,
    *,
    client_id: str = "ingest-domain",
    clock: Clock | None = None,
) -> Iterator[IngestDomain]:
    """An ingest on a broker with its domain's observers and threads, as ``medicobus
    ingest`` runs it."""
    domain, ingestor = domain_ingestor(store, itinerary, settings, clock)
    subscriber = IngestSubscriber(
        ingestor, BrokerConfig(url=broker_url, client_id=client_id), clock=clock
    )
    domain.start()
    subscriber.start()
    try:
        if not subscriber.connected.wait(10):
            raise AssertionError(f"ingest could not connect to {broker_url}")
        yield domain
    finally:
        subscriber.stop()
        domain.stop()


@dataclass
class WebhookReceiver:
    """Records every POST; answers with ``statuses`` in turn (then 200)."""

    statuses: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    attempts: int = 0
    hold: threading.Event | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if receiver.hold is not None:
                    receiver.hold.wait(10)
                with receiver._lock:
                    receiver.attempts += 1
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    if status < 300:
                        receiver.received.append(json.loads(body))
                        receiver.headers.append(dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/medicobus"

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self._server.shutdown()
        self._server.server_close()

    def events(self, kind: str | None = None) -> list[tuple[str, int]]:
        """(event, alert id) received, in order, for alerts of ``kind``."""
        with self._lock:
            return [
                (p["event"].removeprefix("alert."), p["alert"]["id"])
                for p in self.received
                if kind is None or p["alert"]["kind"] == kind
            ]


@contextmanager
def webhook_receiver(statuses: Sequence[int] = ()) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(statuses=list(statuses)).start()
    try:
        yield receiver
    finally:
        receiver.stop()


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
