"""The live state of each vehicle — its latest link, position, battery and fridge — moved
forward as batches are stored, and read for the live views.

Each part moves only forward in its own time: a status or a sample older than what is
held (an outbox catching up, a replayed agent, a last will composed when the bus
connected) is stored but changes nothing here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ingest.sql_dialects import insert_statement
from ingest.tables.intake import vehicle_state, vehicles
from protocol.wire import (
    Batch,
    EnergySample,
    FridgeSample,
    GpsSample,
    StatusSample,
)


@dataclass(frozen=True)
class Position:
    vehicle: str
    operator: str
    label: str
    t: datetime
    lat: float
    lon: float
    speed_mps: float | None
    course_deg: float | None
    online: bool | None
    last_seen: datetime | None


@dataclass(frozen=True)
class VehicleRow:
    id: str
    operator: str
    label: str
    traction: str
    last_seen: datetime | None
    online: bool | None
    soc_pct: float | None = None
    battery_v: float | None = None
    energy_t: datetime | None = None
    fridge_temp_c: float | None = None
    fridge_door_open: bool | None = None
    fridge_t: datetime | None = None


def link_online(
    online: bool | None, status_t: datetime | None, *data_t: datetime | None
) -> bool | None:
    """The link state from the freshest news: a status saying the bus is offline stands
    only while no sample newer than it has arrived (those prove the link came back)."""
    if online is False and status_t is not None and any(t and t > status_t for t in data_t):
        return True
    return online


def _advance(conn: Connection, stamp: str, changes: dict[str, dict[str, Any]]) -> None:
    """Set each vehicle's ``changes`` in ``vehicle_state`` where they are newer than what
    it holds, ``stamp`` being the column that says how new (the changes include it)."""
    if not changes:
        return
    vs = vehicle_state.c
    fields = list(next(iter(changes.values())))
    conn.execute(
        vehicle_state.update()
        .where(
            vs.vehicle == sa.bindparam("p_vehicle"),
            sa.or_(vs[stamp].is_(None), vs[stamp] < sa.bindparam(f"p_{stamp}")),
        )
        .values({f: sa.bindparam(f"p_{f}") for f in fields}),
        [
            {"p_vehicle": v, **{f"p_{k}": value for k, value in row.items()}}
            for v, row in changes.items()
        ],
    )


def _see(conn: Connection, last_seen: dict[str, datetime]) -> None:
    """Each vehicle's row, made if new, with ``last_seen`` moved forward: one statement
    (an upsert), where an insert and an update would each visit every row."""
    if not last_seen:
        return
    vs = vehicle_state.c
    stmt = insert_statement(conn, vehicle_state)
    newer = stmt.excluded.last_seen
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[vs.vehicle],
            set_={"last_seen": newer},
            where=sa.or_(vs.last_seen.is_(None), vs.last_seen < newer),
        ),
        [{"vehicle": v, "last_seen": t} for v, t in last_seen.items()],
    )


_BY_TIME = attrgetter("t")
_Newest = TypeVar("_Newest", GpsSample, EnergySample, FridgeSample, StatusSample)


def _keep_newest(latest: dict[str, _Newest], vehicle: str, samples: Sequence[_Newest]) -> None:
    if not samples:
        return
    newest = max(samples, key=_BY_TIME)
    if vehicle not in latest or latest[vehicle].t < newest.t:
        latest[vehicle] = newest


def advance(conn: Connection, items: Sequence[tuple[Batch, datetime]]) -> None:
    """Move each vehicle's live state forward with newly stored batches, in ``conn``'s
    transaction."""
    latest_fix: dict[str, GpsSample] = {}
    latest_battery: dict[str, EnergySample] = {}
    latest_fridge: dict[str, FridgeSample] = {}
    latest_status: dict[str, StatusSample] = {}
    # When the newest status was received: the offline rule counts silence from there.
    status_seen: dict[str, datetime] = {}
    last_seen: dict[str, datetime] = {}
    for batch, received_at in items:
        vehicle = batch.vehicle
        last_seen[vehicle] = max(received_at, last_seen.get(vehicle, received_at))
        if batch.stream == "status":
            before = latest_status.get(vehicle)
            _keep_newest(latest_status, vehicle, batch.samples)
            if latest_status[vehicle] is not before:
                status_seen[vehicle] = received_at
        elif batch.stream == "gps":
            _keep_newest(latest_fix, vehicle, batch.samples)
        elif batch.stream == "energy":
            # The battery monitor's readings, not the solar charger's.
            _keep_newest(
                latest_battery, vehicle, [e for e in batch.samples if e.soc_pct is not None]
            )
        elif batch.stream == "fridge":
            _keep_newest(latest_fridge, vehicle, batch.samples)
    _see(conn, last_seen)
    # A late batch from an outbox catching up must not move the live position back.
    _advance(
        conn,
        "gps_t",
        {
            v: {
                "gps_t": f.t,
                "lat": f.lat,
                "lon": f.lon,
                "speed_mps": f.speed_mps,
                "course_deg": f.course_deg,
            }
            for v, f in latest_fix.items()
        },
    )
    _advance(
        conn,
        "status_t",
        {
            v: {"status_t": st.t, "online": st.online, "status_seen_at": status_seen[v]}
            for v, st in latest_status.items()
        },
    )
    _advance(
        conn,
        "energy_t",
        {
            v: {"energy_t": e.t, "soc_pct": e.soc_pct, "battery_v": e.voltage_v}
            for v, e in latest_battery.items()
        },
    )
    _advance(
        conn,
        "fridge_t",
        {
            v: {"fridge_t": f.t, "fridge_temp_c": f.temp_c, "fridge_door_open": f.door_open}
            for v, f in latest_fridge.items()
        },
    )


def fleet_state(engine: Engine) -> list[VehicleRow]:
    """Every vehicle of the fleet with its latest link, battery and fridge state."""
    vs = vehicle_state.c
    query = (
        sa.select(
            vehicles,
            vs.last_seen,
            vs.online,
            vs.status_t,
            vs.gps_t,
            vs.soc_pct,
            vs.battery_v,
            vs.energy_t,
            vs.fridge_temp_c,
            vs.fridge_door_open,
            vs.fridge_t,
        )
        .select_from(vehicles.outerjoin(vehicle_state, vs.vehicle == vehicles.c.id))
        .order_by(vehicles.c.id)
    )
    with engine.connect() as conn:
        return [
            VehicleRow(
                r.id,
                r.operator,
                r.label,
                r.traction,
                r.last_seen,
                link_online(r.online, r.status_t, r.gps_t, r.energy_t, r.fridge_t),
                r.soc_pct,
                r.battery_v,
                r.energy_t,
                r.fridge_temp_c,
                r.fridge_door_open,
                r.fridge_t,
            )
            for r in conn.execute(query)
        ]


def positions(engine: Engine) -> list[Position]:
    """The latest position of each vehicle that has one."""
    vs = vehicle_state.c
    query = (
        sa.select(vehicle_state, vehicles.c.label, vehicles.c.operator)
        .select_from(vehicle_state.join(vehicles, vehicles.c.id == vs.vehicle))
        .where(vs.gps_t.is_not(None))
        .order_by(vs.vehicle)
    )
    with engine.connect() as conn:
        return [
            Position(
                r.vehicle,
                r.operator,
                r.label,
                r.gps_t,
                r.lat,
                r.lon,
                r.speed_mps,
                r.course_deg,
                link_online(r.online, r.status_t, r.gps_t, r.energy_t, r.fridge_t),
                r.last_seen,
            )
            for r in conn.execute(query)
        ]
