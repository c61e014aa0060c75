"""Assembles real parts for end-to-end tests: ingest on a broker, the API over HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from fastapi import FastAPI

from api.app import create_app
from api.auth import ApiUser, Role, hash_token
from firmware_config.agent import BrokerConfig
from ingest.metrics import IngestMetrics
from ingest.pipeline import Ingestor
from ingest.store import Store
from ingest.stored_batches import stored_seqs
from ingest.subscriber import IngestSubscriber
from ingest.visit_figures import VisitFigures
from tests.support.mosquitto import free_port


@contextmanager
def running_ingest(
    store: Store,
    broker_url: str,
    client_id: str,
    metrics: IngestMetrics | None = None,
    broker_config: BrokerConfig | None = None,
) -> Iterator[Ingestor]:
    ingestor = Ingestor(store, metrics=metrics)
    subscriber = IngestSubscriber(
        ingestor,
        broker_config or BrokerConfig(url=broker_url, client_id=client_id),
        stored_seqs=stored_seqs(store),
    )
    subscriber.start()
    if not subscriber.connected.wait(10):
        raise AssertionError(f"ingest could not connect to {broker_url}")
    try:
        yield ingestor
    finally:
        subscriber.stop()


ADMIN_TOKEN = "admin-token-for-tests"
TEST_USERS = [
    ApiUser(name="admin", role=Role.ADMIN, token_sha256=hash_token(ADMIN_TOKEN)),
    ApiUser(
        name="fm-caux",
        role=Role.FLEET_MANAGER,
        operator="cpts-caux",
        token_sha256=hash_token("fm-caux-token"),
    ),
    ApiUser(
        name="coord-eure",
        role=Role.COORDINATOR,
        operator="doct-eure",
        token_sha256=hash_token("coord-eure-token"),
    ),
    ApiUser(
        name="eng-eure",
        role=Role.ENGINEER,
        operator="doct-eure",
        token_sha256=hash_token("eng-eure-token"),
    ),
    ApiUser(
        name="funder-eure",
        role=Role.FUNDER,
        operator="doct-eure",
        token_sha256=hash_token("funder-eure-token"),
    ),
]


@contextmanager
def running_api(
    store: Store, token: str = ADMIN_TOKEN, visit_figures: VisitFigures | None = None
) -> Iterator[httpx.Client]:
    """Serve the API with uvicorn on a free port; yields an HTTP client calling it with
    ``token`` (the test admin's by default; see ``TEST_USERS``)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(store, TEST_USERS, visit_figures=visit_figures),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise AssertionError("the API did not start")
        time.sleep(0.02)
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    try:
        yield client
    finally:
        client.close()
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free port; yields its base URL. Open streams get
    two seconds to end when it stops."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2
        )
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
