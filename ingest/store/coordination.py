"""Several ingests on one database: each vehicle's derived state updated by one at a time,
and the groups of batches an ingest stored but did not live to derive.

Ingests sharing an MQTT subscription (``$share/<group>/…``) each receive part of every
bus's batches. The derived state of a vehicle (its stays and visits, fridge alarms,
alerts) is updated under a lock on that vehicle, held in the database:

- on PostgreSQL, a transaction-level advisory lock (``pg_advisory_xact_lock``), so a
  process that dies releases what it held with its connection;
- on one ingest alone (SQLite, or PostgreSQL without ``shared_group``), a lock in the
  process: its threads still take turns.

Under the lock, ``derivation_owners`` says which ingest last derived the vehicle: one
that finds another's id there knows that what it remembers of the vehicle (a live arrival
detector, say) is out of date, and re-derives from the stored samples instead.

Each group of batches stored writes one row in ``derivation_backlog``, in the same
transaction, with the time span of each vehicle's new samples; it is deleted (with the
next group's transaction, or at a clean stop) once the group's derived state is done.
An ingest killed in between leaves its rows: another finds that their holder is gone —
each ingest holds a session-level advisory lock on its own id as long as it lives — and
derives those spans again from the stored samples. Deriving twice changes nothing (every
derived record is replaced, never added to), so nothing is lost and nothing counted twice.

The rest that one ingest must do alone for the whole fleet (the alerts' clock,
notifications, daily records, retention, the time-series forwarder) is done by the one
holding the leader lock (``pg_try_advisory_lock``), taken by the next when it dies.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from ingest.tables.coordination import derivation_backlog, derivation_owners
from protocol.wire import Batch

log = logging.getLogger(__name__)

# The first key of PostgreSQL's two-key advisory locks: what the second one names.
_VEHICLE: Final = 71001
_HOLDER: Final = 71002
_NAMED: Final = 71003
LEADER: Final = "leader"


@dataclass(frozen=True)
class BacklogEntry:
    """The backlog row written with a group of batches, and the earlier groups of the
    same ingest whose derived state is done (their rows go in the same transaction)."""

    holder: str
    group_no: int
    settled: tuple[int, ...] = ()


@dataclass(frozen=True)
class BacklogRow:
    holder: str
    group_no: int
    stored_at: datetime
    spans: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)


def spans_of(batches: Iterable[Batch]) -> dict[str, tuple[datetime, datetime]]:
    """Each vehicle's first and last sample time in ``batches``."""
    spans: dict[str, tuple[datetime, datetime]] = {}
    for batch in batches:
        times = [s.t for s in batch.samples]
        lo, hi = min(times), max(times)
        held = spans.get(batch.vehicle)
        if held is not None:
            lo, hi = min(held[0], lo), max(held[1], hi)
        spans[batch.vehicle] = (lo, hi)
    return spans


def write_backlog(
    conn: Connection, entry: BacklogEntry, new: Sequence[Batch], stored_at: datetime
) -> None:
    """In the intake's transaction: the row of this group (if it stored anything) and the
    rows of the groups settled since."""
    if entry.settled:
        c = derivation_backlog.c
        conn.execute(
            derivation_backlog.delete().where(
                c.holder == entry.holder, c.group_no.in_(entry.settled)
            )
        )
    if not new:
        return
    spans = {
        v: [lo.astimezone(UTC).isoformat(), hi.astimezone(UTC).isoformat()]
        for v, (lo, hi) in spans_of(new).items()
    }
    conn.execute(
        derivation_backlog.insert().values(
            holder=entry.holder,
            group_no=entry.group_no,
            stored_at=stored_at,
            spans=json.dumps(spans, separators=(",", ":")),
        )
    )


def backlog(engine: Engine) -> list[BacklogRow]:
    c = derivation_backlog.c
    with engine.connect() as conn:
        rows = conn.execute(sa.select(derivation_backlog).order_by(c.stored_at, c.group_no))
        return [
            BacklogRow(
                r.holder,
                int(r.group_no),
                r.stored_at,
                {
                    v: (datetime.fromisoformat(lo), datetime.fromisoformat(hi))
                    for v, (lo, hi) in json.loads(r.spans).items()
                },
            )
            for r in rows
        ]


def forget_groups(engine: Engine, holder: str, group_nos: Iterable[int]) -> None:
    nos = sorted(set(group_nos))
    if not nos:
        return
    c = derivation_backlog.c
    with engine.begin() as conn:
        conn.execute(derivation_backlog.delete().where(c.holder == holder, c.group_no.in_(nos)))


class Coordinator:
    """Locks and identity of one ingest among those sharing a database.

    ``shared``: other ingests may write the same vehicles (``shared_group``, PostgreSQL
    only); without it every lock is this process's own and it always leads.
    """

    def __init__(self, engine: Engine, *, shared: bool = False) -> None:
        if shared and engine.dialect.name != "postgresql":
            raise ValueError(
                "several ingests on one database need PostgreSQL: SQLite takes one writer"
            )
        self.engine = engine
        self.shared = shared
        self.holder = uuid.uuid4().hex
        self._local_locks: dict[tuple[str, str], threading.RLock] = {}
        self._locks_guard = threading.Lock()
        self._held = threading.local()
        self._presence: Connection | None = None
        self._lock_connections: list[list[Connection]] = []
        self._leading = not shared

    # --- locks -----------------------------------------------------------------------

    def _local(self, kind: str, name: str) -> threading.RLock:
        with self._locks_guard:
            return self._local_locks.setdefault((kind, name), threading.RLock())

    def _spare_connections(self) -> list[Connection]:
        spare: list[Connection] | None = getattr(self._held, "spare", None)
        if spare is None:
            spare = self._held.spare = []
            with self._locks_guard:
                self._lock_connections.append(spare)
        return spare

    def _held_set(self) -> set[tuple[int, str]]:
        held: set[tuple[int, str]] | None = getattr(self._held, "keys", None)
        if held is None:
            held = self._held.keys = set()
        return held

    @contextlib.contextmanager
    def _database_lock(self, kind: int, name: str) -> Iterator[Connection | None]:
        """Hold PostgreSQL's advisory lock ``(kind, name)`` for the block, in a transaction
        of its own; None inside a block of this thread that holds it already."""
        held = self._held_set()
        if (kind, name) in held:
            yield None
            return
        # Each thread keeps its lock connections (one per lock it holds at once): taken
        # from the pool for every lock, a connection would be pinged first, and a
        # vehicle's lock is taken for every group of batches.
        spare: list[Connection] = self._spare_connections()
        conn = spare.pop() if spare else self.engine.connect()
        try:
            with conn.begin():
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:kind, hashtext(:name))"),
                    {"kind": kind, "name": name},
                )
                held.add((kind, name))
                try:
                    yield conn
                finally:
                    held.discard((kind, name))
        finally:
            if not conn.closed and not conn.invalidated:
                spare.append(conn)
            else:
                with contextlib.suppress(Exception):
                    conn.close()

    @contextlib.contextmanager
    def locking(self, vehicle: str) -> Iterator[None]:
        """Hold ``vehicle``'s lock for the block, to change derived state that no ingest
        keeps in memory (alerts, fridge alarms rebuilt on new rules)."""
        if not self.shared:
            with self._local("vehicle", vehicle):
                yield
            return
        with self._database_lock(_VEHICLE, vehicle):
            yield

    @contextlib.contextmanager
    def vehicle(self, vehicle: str) -> Iterator[bool]:
        """Hold ``vehicle``'s lock for the block; yields whether this ingest was the last to
        derive it (False: what it remembers of the vehicle is out of date)."""
        if not self.shared:
            with self._local("vehicle", vehicle):
                yield True
            return
        with self._database_lock(_VEHICLE, vehicle) as conn:
            if conn is None:
                yield True
                return
            # A row comes back when the mark was another's (or none): then it is ours.
            stmt = postgresql.insert(derivation_owners).values(vehicle=vehicle, holder=self.holder)
            changed = conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["vehicle"],
                    set_={"holder": stmt.excluded.holder},
                    where=derivation_owners.c.holder != stmt.excluded.holder,
                ).returning(derivation_owners.c.vehicle)
            ).first()
            yield changed is None

    @contextlib.contextmanager
    def exclusively(self, name: str) -> Iterator[None]:
        """Hold the lock called ``name`` (one of its kind across the ingests) for the block."""
        if not self.shared:
            with self._local("named", name):
                yield
            return
        with self._database_lock(_NAMED, name):
            yield

    # --- presence and leadership -------------------------------------------------------

    def start(self) -> None:
        """Make this ingest's presence known (its id's lock, held while it lives)."""
        if not self.shared or self._presence is not None:
            return
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(
            sa.text("SELECT pg_advisory_lock(:kind, hashtext(:name))"),
            {"kind": _HOLDER, "name": self.holder},
        )
        self._presence = conn

    def stop(self) -> None:
        if self._presence is not None:
            # Its locks go at once (the server would see the closed connection only a
            # moment later), then its session ends (back in the pool, it would keep them).
            with contextlib.suppress(Exception):
                self._presence.execute(sa.text("SELECT pg_advisory_unlock_all()"))
            with contextlib.suppress(Exception):
                self._presence.invalidate()
                self._presence.close()
            self._presence = None
        self._leading = not self.shared
        with self._locks_guard:
            for spare in self._lock_connections:
                while spare:
                    with contextlib.suppress(Exception):
                        spare.pop().close()

    def try_lead(self) -> bool:
        """Whether this ingest leads, taking the lead if no live ingest holds it."""
        if not self.shared or self._leading:
            return self._leading
        if self._presence is None:
            return False
        self._leading = bool(
            self._presence.execute(
                sa.text("SELECT pg_try_advisory_lock(:kind, hashtext(:name))"),
                {"kind": _NAMED, "name": LEADER},
            ).scalar_one()
        )
        return self._leading

    def still_present(self) -> bool:
        """Whether the connection holding this ingest's presence (and lead) still holds
        them; False once the database has let them go."""
        if not self.shared:
            return True
        if self._presence is None:
            return False
        try:
            self._presence.execute(sa.text("SELECT 1"))
        except Exception:
            return False
        return True

    def alive(self, holder: str) -> bool:
        """Whether the ingest with id ``holder`` is running."""
        if holder == self.holder:
            return True
        if not self.shared:
            return False
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            got = bool(
                conn.execute(
                    sa.text("SELECT pg_try_advisory_lock(:kind, hashtext(:name))"),
                    {"kind": _HOLDER, "name": holder},
                ).scalar_one()
            )
            if got:
                conn.execute(
                    sa.text("SELECT pg_advisory_unlock(:kind, hashtext(:name))"),
                    {"kind": _HOLDER, "name": holder},
                )
        return not got
