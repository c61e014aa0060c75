"""Which operators use each stop: filled from the fleet file, and, for a database made
before it was kept, from the visits and stays already stored."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from ingest.itinerary import Itinerary
from ingest.schema import alembic_config, migrate
from ingest.store import Store, create_engine
from ingest.tables.intake import stop_operators


def test_upgrading_a_database_keeps_its_data_and_fills_the_stops_served(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        config = alembic_config(engine)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0004")
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO vehicles (id, operator, label, traction) "
                "VALUES ('vexin-01', 'doct-eure', 'Vexin', 'diesel')"
            )
            conn.exec_driver_sql(
                "INSERT INTO stops (id, name, lat, lon, radius_m) "
                "VALUES ('gisors', 'Gisors', 49.28, 1.77, 150)"
            )
            conn.exec_driver_sql(
                "INSERT INTO unscheduled_stops (vehicle, day, stop, arrival) "
                "VALUES ('vexin-01', '2026-11-16', 'gisors', '2026-11-16 07:00:00')"
            )
        migrate(engine)
        with engine.connect() as conn:
            served = conn.execute(sa.select(stop_operators)).all()
            assert [tuple(r) for r in served] == [("gisors", "doct-eure")]
            assert conn.exec_driver_sql("SELECT count(*) FROM unscheduled_stops").scalar() == 1
    finally:
        engine.dispose()


def test_loading_the_fleet_lists_depots_timetable_and_one_off_stops(
    store: Store, itinerary: Itinerary
) -> None:
    served = set(itinerary.stops_served())
    assert ("gisors", "doct-eure") in served and ("yvetot", "cpts-caux") in served
    assert {s.id for s in store.stops("doct-eure")} == {s for s, o in served if o == "doct-eure"}
    assert {s.id for s in store.stops("nobody")} == set()
    assert len(store.stops()) == len(itinerary.stops)
    # Loading again, with a stop dropped from one operator's timetable, forgets it there.
    trimmed = itinerary.model_copy(
        update={"slots": [s for s in itinerary.slots if s.stop != "morgny"]}
    )
    store.load_fleet(trimmed)
    assert "morgny" not in {s.id for s in store.stops("doct-eure")}
