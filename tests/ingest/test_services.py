"""The service layer on a tracked day (SQLite and PostgreSQL): commands write in one
transaction or not at all, and nothing of another operator is found."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from ingest.alerts.notify_settings import OperatorRouting
from ingest.itinerary import Itinerary
from ingest.punctuality.config import PunctualitySettings
from ingest.punctuality.ledger import CoordinatorChange
from ingest.punctuality.tracker import PunctualityTracker
from ingest.services import alerts, visits
from ingest.services.common import NotFoundError, RefusedError, unit_of_work
from ingest.store import Store
from ingest.tables.punctuality import visit_changes
from tests.ingest.punctuality.test_tracker import MONDAY, ingest, vexin_monday

VESLY = "vexin-01:2026-11-16:vesly"
NOW = datetime(2026, 11, 16, 18, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Person:
    name: str
    operator: str | None
    sees_all: bool = False

    def sees(self, operator: str) -> bool:
        return self.sees_all or self.operator == operator


CAMILLE = Person("camille", "doct-eure")
OF_CAUX = Person("lucas", "cpts-caux")


@pytest.fixture
def tracked(store: Store, itinerary: Itinerary) -> Store:
    tracker = PunctualityTracker(store, itinerary, PunctualitySettings(horizon_days=14))
    tracker.start(MONDAY, past_days=1)
    ingest(store, tracker, vexin_monday(itinerary))
    return store


def _changes_recorded(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(visit_changes)).scalar_one())


def test_a_refused_change_writes_nothing(tracked: Store) -> None:
    far = NOW + timedelta(days=3)
    change = CoordinatorChange("correct", "camille", NOW, "typo", far, None)
    with pytest.raises(RefusedError, match="more than 12 h"):
        visits.change_visit(tracked, CAMILLE, VESLY, change)
    assert _changes_recorded(tracked) == 0
    confirmed = visits.change_visit(
        tracked, CAMILLE, VESLY, CoordinatorChange("confirm", "camille", NOW)
    )
    assert confirmed.state.confirmed_by == "camille"
    assert _changes_recorded(tracked) == 1


def test_another_operators_visit_is_not_found_and_not_changed(tracked: Store) -> None:
    with pytest.raises(NotFoundError):
        visits.change_visit(tracked, OF_CAUX, VESLY, CoordinatorChange("confirm", "lucas", NOW))
    with pytest.raises(NotFoundError):
        visits.visit_history(tracked, OF_CAUX, VESLY, NOW)
    assert _changes_recorded(tracked) == 0
    day = visits.visits_of_day(tracked, OF_CAUX, MONDAY, None, NOW)
    assert VESLY not in [v.row.id for v in day.visits]
    assert [v.row.operator for v in day.visits] == ["cpts-caux"] * len(day.visits)


def test_a_command_joins_the_callers_transaction(tracked: Store) -> None:
    """A command's storage writes in the unit of work it is given: rolled back with it."""
    from ingest.punctuality import visit_rows

    class AbandonedError(Exception):
        pass

    with pytest.raises(AbandonedError), unit_of_work(tracked) as conn:
        visit_rows.record_change(
            conn,
            VESLY,
            lambda row, so_far: CoordinatorChange("confirm", "camille", NOW),
        )
        raise AbandonedError
    assert _changes_recorded(tracked) == 0


def test_an_unrecorded_routing_is_not_ready_and_a_foreign_one_not_found(tracked: Store) -> None:
    from ingest.services.common import NotReadyError

    body = OperatorRouting.model_validate({"people": {}, "roles": {}, "routes": []})
    with pytest.raises(NotFoundError):
        alerts.set_routing(tracked, OF_CAUX, "doct-eure", body, NOW)
    with pytest.raises(NotReadyError):
        alerts.set_routing(tracked, CAMILLE, "doct-eure", body, NOW)
