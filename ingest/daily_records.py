"""Daily records (fridge logs, footprint) kept up to date off the ingest's hot path.

The observer only marks which (vehicle, record, local day) the new samples touch, in a
table, so the marks survive a restart; a worker thread rebuilds marked days from the
stored samples every few seconds. A mark carries a version: a day marked again while it
is being rebuilt stays marked, so no sample is left out of its day's record.

Each record also keeps the basis it was built on (a fingerprint of the settings that
shape it: fridge rules, factor set, consumption); when the settings change, every day of
the vehicle is marked and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final, Literal, Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ingest.local_days import local_date
from ingest.sql_dialects import insert_statement, upsert
from ingest.store import Store
from ingest.tables.daily_records import pending_days, record_bases
from protocol.clock import Clock
from protocol.wire import Batch

log = logging.getLogger(__name__)

RecordKind = Literal["fridge", "footprint"]
RECORD_KINDS: Final[tuple[RecordKind, ...]] = ("fridge", "footprint")


def fingerprint(settings: Mapping[str, Any]) -> str:
    """A short, stable digest of the settings a record is built on."""
    text = json.dumps(settings, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class DayRecorder(Protocol):
    """Builds one kind of daily record from the stored samples."""

    def record_day(self, vehicle: str, day: date, now: datetime, basis: str) -> None: ...

    def data_span(self, vehicle: str) -> tuple[datetime, datetime] | None:
        """First and last time of the samples this record is built from."""
        ...

    def unfinished_days(self, before: date) -> list[tuple[str, date]]:
        """(vehicle, day) of records built while their day was still going on."""
        ...


@dataclass(frozen=True)
class RecordSource:
    """How one kind of daily record is built, and on which settings."""

    recorder: DayRecorder
    basis: Mapping[str, str]  # vehicle → fingerprint of the settings its records follow
    # Run before a vehicle's records are rebuilt on new settings (e.g. recompute alarms).
    on_new_basis: Callable[[str], object] | None = None


def days_of(start: datetime, end: datetime, zone: ZoneInfo) -> list[date]:
    first, last = local_date(start, zone), local_date(end, zone)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


class PendingDays:
    def __init__(self, store: Store, zone: ZoneInfo, clock: Clock) -> None:
        self._store = store
        self._zone = zone
        self._clock = clock

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    def mark(self, marks: Iterable[tuple[str, RecordKind, date]]) -> None:
        unique = sorted(set(marks))
        if not unique:
            return
        now = self._clock.now()
        with self._store.engine.begin() as conn:
            self._mark(conn, unique, now)

    def mark_span(self, vehicle: str, record: RecordKind, start: datetime, end: datetime) -> None:
        self.mark((vehicle, record, d) for d in days_of(start, end, self._zone))

    def _mark(
        self, conn: Connection, marks: Sequence[tuple[str, RecordKind, date]], now: datetime
    ) -> None:
        # A mark already there gets a new version: a rebuild under way will not clear it.
        stmt = insert_statement(conn, pending_days)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["vehicle", "record", "day"],
                set_={"version": pending_days.c.version + 1, "marked_at": stmt.excluded.marked_at},
            ),
            [
                {"vehicle": v, "record": r, "day": d, "version": 1, "marked_at": now}
                for v, r, d in marks
            ],
        )

    def take(self) -> list[tuple[str, RecordKind, date, int]]:
        c = pending_days.c
        query = sa.select(c.vehicle, c.record, c.day, c.version).order_by(c.marked_at)
        with self._store.engine.connect() as conn:
            return [(r.vehicle, r.record, r.day, int(r.version)) for r in conn.execute(query)]

    def done(self, vehicle: str, record: str, day: date, version: int) -> None:
        c = pending_days.c
        with self._store.engine.begin() as conn:
            conn.execute(
                pending_days.delete().where(
                    c.vehicle == vehicle, c.record == record, c.day == day, c.version == version
                )
            )


def pending_count(store: Store, vehicle: str, record: RecordKind, first: date, last: date) -> int:
    """Days of ``[first, last]`` marked and not yet rebuilt."""
    c = pending_days.c
    query = (
        sa.select(sa.func.count())
        .select_from(pending_days)
        .where(c.vehicle == vehicle, c.record == record, c.day >= first, c.day <= last)
    )
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def marks_for(
    batches: Sequence[Batch], zone: ZoneInfo, fridge_reach: Mapping[str, timedelta]
) -> list[tuple[str, RecordKind, date]]:
    """The days whose records new samples change."""
    marks: list[tuple[str, RecordKind, date]] = []
    for batch in batches:
        times = [s.t for s in batch.samples]
        lo, hi = min(times), max(times)
        if batch.stream == "fridge":
            reach = fridge_reach.get(batch.vehicle, timedelta(0))
            marks.extend((batch.vehicle, "fridge", d) for d in days_of(lo, hi + reach, zone))
        elif batch.stream in ("gps", "energy", "event"):
            # A fix also shapes the next hour's first step and jump filtering.
            extra = timedelta(hours=1) if batch.stream == "gps" else timedelta(0)
            marks.extend((batch.vehicle, "footprint", d) for d in days_of(lo, hi + extra, zone))
    return marks


class DailyRecordsWorker:
    """Rebuilds marked days in a background thread; ``catch_up`` does it in the caller's."""

    def __init__(
        self,
        store: Store,
        pending: PendingDays,
        sources: Mapping[RecordKind, RecordSource],
        clock: Clock,
        every_s: float,
    ) -> None:
        self._store = store
        self._pending = pending
        self._sources = sources
        self._clock = clock
        self._every_s = every_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bases_checked = False
        self.failures = 0

    def check_bases(self) -> list[tuple[str, RecordKind]]:
        """Mark every day of the records built on other settings than today's."""
        with self._store.engine.connect() as conn:
            stored = {(r.vehicle, r.record): r.basis for r in conn.execute(sa.select(record_bases))}
        changed: list[tuple[str, RecordKind]] = []
        for record, source in self._sources.items():
            for vehicle, basis in source.basis.items():
                if stored.get((vehicle, record)) == basis:
                    continue
                changed.append((vehicle, record))
                if source.on_new_basis is not None:
                    source.on_new_basis(vehicle)
                span = source.recorder.data_span(vehicle)
                if span is not None:
                    self._pending.mark_span(vehicle, record, span[0], span[1])
                with self._store.engine.begin() as conn:
                    upsert(
                        conn,
                        record_bases,
                        ("vehicle", "record"),
                        {"vehicle": vehicle, "record": record, "basis": basis},
                    )
        return changed

    def finish_ended_days(self) -> None:
        """Days recorded while still going on are rebuilt once over."""
        today = local_date(self._clock.now(), self._pending.zone)
        self._pending.mark(
            (vehicle, record, day)
            for record, source in self._sources.items()
            for vehicle, day in source.recorder.unfinished_days(today)
        )

    def catch_up(self) -> int:
        """Rebuild every day marked so far; returns how many were rebuilt.

        Days marked again meanwhile (samples still arriving) wait for the next pass.
        """
        built = 0
        with self._lock:
            if not self._bases_checked:
                self.check_bases()
                self._bases_checked = True
            self.finish_ended_days()
            for vehicle, record, day, version in self._pending.take():
                source = self._sources.get(record)
                basis = source.basis.get(vehicle) if source else None
                if source is None or basis is None:
                    # A vehicle or record no longer configured: nothing to build.
                    self._pending.done(vehicle, record, day, version)
                    continue
                try:
                    source.recorder.record_day(vehicle, day, self._clock.now(), basis)
                except Exception:
                    # Left marked: the next pass tries again.
                    self.failures += 1
                    log.exception("could not build the %s record of %s on %s", record, vehicle, day)
                    return built
                self._pending.done(vehicle, record, day, version)
                built += 1
        return built

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="daily-records", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                self.catch_up()
            except Exception:
                log.exception("daily records: pass failed; retrying in %.0f s", self._every_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
