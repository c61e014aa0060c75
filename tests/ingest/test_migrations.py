"""Concurrent start-ups migrate a new database once, without tripping over each other."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from ingest.schema import alembic_config
from ingest.store import Store


def test_processes_starting_together_on_a_new_sqlite_file_both_migrate_it(
    tmp_path: Path,
) -> None:
    # The ingest and the API are often started at the same moment on a new database.
    for attempt in range(3):
        url = f"sqlite:///{tmp_path / f'together-{attempt}.sqlite'}"
        code = f"from ingest.store import Store; Store.open({url!r}).close()"
        procs = [
            subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
            for _ in range(3)
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
        store = Store.open(url)
        try:
            assert store.vehicle_ids() == set()
        finally:
            store.close()


def test_webhook_notifications_queued_before_the_email_and_sms_channels_keep_their_state(
    database_url: str,
) -> None:
    """0011 adds channel, recipient and idempotency key to the delivery queue: the rows
    already there are the webhook's, delivered or not, and are kept as they were."""
    engine = sa.create_engine(database_url)
    try:
        config = alembic_config(engine)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0007")
            connection.exec_driver_sql(
                "INSERT INTO alert_notifications (alert_id, event, payload, created_at, attempts,"
                " delivered_at) VALUES (1, 'raised', '{}', '2026-11-23 09:00:00', 1,"
                " '2026-11-23 09:00:01'), (1, 'cleared', '{}', '2026-11-23 10:00:00', 0, NULL)"
            )
            command.upgrade(config, "head")
            rows = connection.exec_driver_sql(
                "SELECT event, channel, recipient, dedup_key, attempts, delivered_at IS NULL"
                " FROM alert_notifications ORDER BY id"
            ).all()
            routing = connection.exec_driver_sql("SELECT count(*) FROM alert_routing").scalar()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("raised", "webhook", "", None, 1, False),
        ("cleared", "webhook", "", None, 0, True),
    ]
    assert routing == 0


def test_counts_recorded_before_consultations_by_profile_are_kept_and_back(
    database_url: str,
) -> None:
    """0014 adds consultations by profile to visit changes and the imported months: the
    changes already there keep their counts, with no profiles; downgrading keeps them too."""
    engine = sa.create_engine(database_url)
    try:
        config = alembic_config(engine)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0013")
            connection.exec_driver_sql(
                "INSERT INTO visit_changes (visit_id, kind, who, at, patients_seen, note) VALUES"
                " ('vexin-01:2026-11-16:vesly', 'attendance', 'camille',"
                " '2026-11-16 12:00:00', 14, 'grippe')"
            )
            command.upgrade(config, "head")
            upgraded = connection.exec_driver_sql(
                "SELECT patients_seen, note, consultations FROM visit_changes"
            ).one()
            imported = connection.exec_driver_sql(
                "SELECT count(*) FROM imported_consultations"
            ).scalar()
            command.downgrade(config, "0013")
            downgraded = connection.exec_driver_sql(
                "SELECT patients_seen, note FROM visit_changes"
            ).one()
    finally:
        engine.dispose()
    assert tuple(upgraded) == (14, "grippe", None)
    assert imported == 0
    assert tuple(downgraded) == (14, "grippe")


def test_the_link_state_moves_into_the_live_state_and_its_table_goes(database_url: str) -> None:
    """0019 folds vehicle_links into vehicle_state: the newer status stands, with when it
    was received; a vehicle known by its link only gets a row; nothing is lost."""
    engine = sa.create_engine(database_url)
    try:
        config = alembic_config(engine)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0018")
            connection.exec_driver_sql(
                "INSERT INTO vehicle_state (vehicle, online, status_t) VALUES"
                " ('vexin-01', true, '2026-11-23 09:00:00'),"
                " ('caux-01', true, '2026-11-23 11:00:00')"
            )
            connection.exec_driver_sql(
                "INSERT INTO vehicle_links (vehicle, online, status_t, observed_at) VALUES"
                " ('vexin-01', false, '2026-11-23 10:00:00', '2026-11-23 10:00:05'),"
                " ('caux-01', false, '2026-11-23 08:00:00', '2026-11-23 08:00:03'),"
                " ('eure-02', false, '2026-11-23 07:00:00', '2026-11-23 07:00:01')"
            )
            command.upgrade(config, "head")
            rows = connection.exec_driver_sql(
                "SELECT vehicle, online, status_t, status_seen_at FROM vehicle_state"
                " ORDER BY vehicle"
            ).all()
            tables = sa.inspect(connection).get_table_names()
    finally:
        engine.dispose()
    found = {r[0]: (bool(r[1]), str(r[2])[:19], r[3] and str(r[3])[:19]) for r in rows}
    assert found == {
        # The link's status was newer: it stands, with its reception time.
        "vexin-01": (False, "2026-11-23 10:00:00", "2026-11-23 10:00:05"),
        # The live state's status was newer: kept; its reception time is not known.
        "caux-01": (True, "2026-11-23 11:00:00", None),
        "eure-02": (False, "2026-11-23 07:00:00", "2026-11-23 07:00:01"),
    }
    assert "vehicle_links" not in tables
