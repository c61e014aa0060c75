"""Revision 0005 keeps what coordinators said: a confirmation's or count's note, kept in
``reason`` before, moves to ``note``; a correction keeps its reason (SQLite, PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command

from ingest.schema import alembic_config
from ingest.store import Store

AT = datetime(2026, 11, 16, 12, 0)


def _to(store: Store, revision: str, down: bool = False) -> None:
    config = alembic_config(store.engine)
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def test_notes_leave_the_reason_column_and_come_back_on_downgrade(store: Store) -> None:
    engine = store.engine
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM visit_changes"))
    _to(store, "0004", down=True)
    rows = [
        ("confirm", "seen by the GP"),
        ("attendance", "flu clinic"),
        ("correct", "driver's log"),
        ("cancel", "snow"),
        ("confirm", None),
    ]
    with engine.begin() as conn:
        for kind, reason in rows:
            conn.execute(
                sa.text(
                    "INSERT INTO visit_changes (visit_id, kind, who, at, reason) "
                    "VALUES ('vexin-01:2026-11-16:vesly', :kind, 'camille', :at, :reason)"
                ),
                {"kind": kind, "at": AT, "reason": reason},
            )
    _to(store, "head")
    with engine.connect() as conn:
        after = conn.execute(
            sa.text("SELECT kind, reason, note FROM visit_changes ORDER BY id")
        ).all()
    assert [tuple(r) for r in after] == [
        ("confirm", None, "seen by the GP"),
        ("attendance", None, "flu clinic"),
        ("correct", "driver's log", None),
        ("cancel", "snow", None),
        ("confirm", None, None),
    ]
    _to(store, "0004", down=True)
    with engine.connect() as conn:
        back = conn.execute(sa.text("SELECT kind, reason FROM visit_changes ORDER BY id")).all()
    assert [tuple(r) for r in back] == rows
    _to(store, "head")
    assert datetime.now(UTC) > AT.replace(tzinfo=UTC)
