"""Assembles real parts for end-to-end tests: ingest on a broker, the API over HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from api.app import create_app
from firmware_config.agent import BrokerConfig
from ingest.pipeline import Ingestor
from ingest.store import Store
from ingest.subscriber import IngestSubscriber
from tests.support.mosquitto import free_port


@contextmanager
def running_ingest(store: Store, broker_url: str, client_id: str) -> Iterator[Ingestor]:
    ingestor = Ingestor(store)
    subscriber = IngestSubscriber(ingestor, BrokerConfig(url=broker_url, client_id=client_id))
    subscriber.start()
    if not subscriber.connected.wait(10):
        raise AssertionError(f"ingest could not connect to {broker_url}")
    try:
        yield ingestor
    finally:
        subscriber.stop()


@contextmanager
def running_api(store: Store) -> Iterator[str]:
    """Serve the API with uvicorn on a free port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(store), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise AssertionError("the API did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
