"""The API fuzzed over its own OpenAPI schema with schemathesis, as an admin and as a
coordinator, on a day the ingest has tracked: no answer is a server error, and every
answer matches the schema it declares. Bounded: a few examples per operation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.app import create_app
from ingest.itinerary import Itinerary
from ingest.punctuality.figures import StoredVisitFigures
from ingest.store import Store
from protocol.clock import ManualClock
from tests.support.live import TEST_USERS
from tests.support.tracked_day import track_vexin_monday

EVENING = datetime(2026, 11, 16, 19, 0, tzinfo=UTC)
TOKENS = ("admin-token-for-tests", "coord-eure-token")


@pytest.fixture
def fuzzed_app(store: Store, itinerary: Itinerary) -> FastAPI:
    track_vexin_monday(store, itinerary, EVENING)
    clock = ManualClock(EVENING)
    return create_app(
        store, TEST_USERS, visit_figures=StoredVisitFigures(store, clock), clock=clock
    )


# The live stream never ends by itself: it has its own tests (tests/api/test_live.py).
NOT_FUZZED = {"/api/v1/live"}


def test_no_server_error_and_every_answer_matches_its_schema(fuzzed_app: FastAPI) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app)
    fuzzed = []
    for found in schema.get_all_operations():
        operation = found.ok()
        if operation.path in NOT_FUZZED:
            continue
        fuzzed.append(f"{operation.method.upper()} {operation.path}")

        # Data the schema allows, and data it does not (which must be refused, not crash).
        cases = operation.as_strategy() | operation.as_strategy(
            generation_mode=schemathesis.GenerationMode.NEGATIVE
        )

        @given(case=cases)
        @settings(
            max_examples=12,
            deadline=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def call(case: Any) -> None:
            for token in TOKENS:
                case.call_and_validate(
                    headers={"Authorization": f"Bearer {token}"},
                    checks=[not_a_server_error, response_schema_conformance],
                )

        call()
    assert len(fuzzed) >= 29, fuzzed
