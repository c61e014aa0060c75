"""The settings the ingest derives records with, recorded in the store for the API.

The API runs in another process with its own settings; what it reports (which factor
set, which car factor, which fridge range) must be what the ingest computed with, so the
ingest writes it here when it starts and the API reads it back.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Final

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from ingest.alerts.notify_settings import NotificationSettings
from ingest.follow_up.consultations import FollowUpSettings
from ingest.footprint.avoided import CarTripFactor
from ingest.footprint.emissions import FactorSet
from ingest.footprint.energy import IdlingConfig
from ingest.itinerary import Itinerary
from ingest.settings import FridgeRules
from ingest.sql_dialects import upsert
from ingest.store import Store
from ingest.tables.reports import report_configuration

CURRENT: Final = "current"


class FactorSetInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    version: str
    date: dt.date
    source: str
    url: str | None = None

    @classmethod
    def of(cls, factors: FactorSet) -> FactorSetInfo:
        return cls(
            id=factors.id,
            name=factors.name,
            version=factors.version,
            date=factors.date,
            source=factors.source,
            url=factors.url,
        )


class ReportConfiguration(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str
    factor_set: FactorSetInfo
    car_trip_factor: CarTripFactor
    idling: IdlingConfig
    fridge: dict[str, FridgeRules]
    # Vehicles whose consumption the fleet file gives: the others have no footprint.
    footprint_vehicles: list[str]
    recorded_at: dt.datetime
    # Operators' names by id, for what the public sees.
    operators: dict[str, str] = Field(default_factory=dict)
    # Each operator's patient profiles, specialities and professionals' ids.
    follow_up: dict[str, FollowUpSettings] = Field(default_factory=dict)
    # The day each vehicle's service began (the three-year evaluation counts from it).
    service_start: dict[str, dt.date] = Field(default_factory=dict)

    def follow_up_of(self, operator: str) -> FollowUpSettings:
        return self.follow_up.get(operator) or FollowUpSettings()


def record_configuration(store: Store, configuration: ReportConfiguration) -> None:
    with store.engine.begin() as conn:
        upsert(
            conn,
            report_configuration,
            ("name",),
            {
                "name": CURRENT,
                "body": configuration.model_dump_json(),
                "recorded_at": configuration.recorded_at,
            },
        )


def load_configuration(store: Store) -> ReportConfiguration | None:
    c = report_configuration.c
    with store.engine.connect() as conn:
        body = conn.execute(sa.select(c.body).where(c.name == CURRENT)).scalar()
    return None if body is None else ReportConfiguration.model_validate_json(body)


NOTIFICATIONS: Final = "notifications"


def record_notification_settings(
    store: Store, settings: NotificationSettings, now: dt.datetime
) -> None:
    """Who is told of which alert, for the API to show (without secrets)."""
    with store.engine.begin() as conn:
        upsert(
            conn,
            report_configuration,
            ("name",),
            {"name": NOTIFICATIONS, "body": json.dumps(settings.public()), "recorded_at": now},
        )


def load_notification_settings(store: Store) -> dict[str, Any] | None:
    c = report_configuration.c
    with store.engine.connect() as conn:
        body = conn.execute(sa.select(c.body).where(c.name == NOTIFICATIONS)).scalar()
    if body is None:
        return None
    found: dict[str, Any] = json.loads(body)
    return found


ITINERARY: Final = "itinerary"


def record_itinerary(store: Store, itinerary: Itinerary, now: dt.datetime) -> None:
    """The fleet and timetable the ingest runs with, for the API's GTFS feeds."""
    with store.engine.begin() as conn:
        upsert(
            conn,
            report_configuration,
            ("name",),
            {
                "name": ITINERARY,
                "body": itinerary.model_dump_json(by_alias=True),
                "recorded_at": now,
            },
        )


def load_itinerary(store: Store) -> Itinerary | None:
    c = report_configuration.c
    with store.engine.connect() as conn:
        body = conn.execute(sa.select(c.body).where(c.name == ITINERARY)).scalar()
    return None if body is None else Itinerary.model_validate_json(body)
