"""The cold chain in the running ingest: alarms kept in step with the stored readings,
and the fridge's daily records.

When fridge readings arrive (late, out of order, or both), the alarms are recomputed
over a window of stored readings large enough to hold every run the new readings can
belong to, and the stored alarms of that window are reconciled with the result: the
answer is the one a full recomputation would give, whatever the order of arrival.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from ingest.coldchain import storage
from ingest.coldchain.daily import daily_records
from ingest.coldchain.reconcile import AlarmPlan, reconcile
from ingest.coldchain.rules import ColdChainConfig, ColdChainReport, assess
from ingest.local_days import LocalDay
from ingest.store import Store
from protocol.clock import Clock
from protocol.wire import Batch

log = logging.getLogger(__name__)

FridgeRulesOf = Callable[[str], ColdChainConfig]


def neutral_band(config: ColdChainConfig) -> storage.NeutralBand:
    """The temperatures at which no rule of ``config`` holds."""
    return storage.NeutralBand(
        at_least_c=config.low_c,
        above_c=config.freeze_alarm_at_or_below_c,
        at_most_c=min(config.high_c, config.heat_alarm_above_c, config.early_warning_above_c),
    )


@dataclass(frozen=True)
class AlarmUpdate:
    vehicle: str
    plan: AlarmPlan
    # The times whose daily records the changed alarms touch.
    touched: tuple[tuple[datetime, datetime], ...]


def _is_neutral(temp_c: float, band: storage.NeutralBand) -> bool:
    return band.at_least_c <= temp_c <= band.at_most_c and temp_c > band.above_c


class ColdChainMonitor:
    """Keeps each vehicle's stored fridge alarms equal to what its readings show."""

    def __init__(self, store: Store, rules: FridgeRulesOf, clock: Clock) -> None:
        self._store = store
        self._rules = rules
        self._clock = clock
        # The observer (writer thread) and a rebuild (worker thread) may meet here.
        self._lock = threading.Lock()

    def on_batches(self, batches: Sequence[Batch]) -> list[AlarmUpdate]:
        spans: dict[str, tuple[datetime, datetime]] = {}
        unremarkable: dict[str, bool] = {}
        for batch in batches:
            if batch.stream != "fridge":
                continue
            band = neutral_band(self._rules(batch.vehicle))
            times = [s.t for s in batch.samples]
            lo, hi = min(times), max(times)
            if batch.vehicle in spans:
                a, b = spans[batch.vehicle]
                lo, hi = min(a, lo), max(b, hi)
            spans[batch.vehicle] = (lo, hi)
            unremarkable[batch.vehicle] = unremarkable.get(batch.vehicle, True) and all(
                s.temp_c is None or _is_neutral(s.temp_c, band) for s in batch.samples
            )
        quiet = [v for v, ok in unremarkable.items() if ok]
        busy = self._may_change(quiet, spans) if quiet else set()
        return [
            self.update_alarms(vehicle, lo, hi)
            for vehicle, (lo, hi) in sorted(spans.items())
            if not unremarkable[vehicle] or vehicle in busy
        ]

    def _may_change(
        self, vehicles: Sequence[str], spans: dict[str, tuple[datetime, datetime]]
    ) -> set[str]:
        """Of ``vehicles``, whose new readings (all meeting no rule) may change an alarm.

        Such readings create none; they can only end an ongoing run or split a stored
        one. One query for the whole group, over a window covering every vehicle's span
        (wider than needed: a vehicle found is merely recomputed).
        """
        reach = max(self._rules(v).max_sample_spacing for v in vehicles)
        start = min(spans[v][0] for v in vehicles) - reach
        end = max(spans[v][1] for v in vehicles) + reach
        with self._store.engine.connect() as conn:
            return storage.vehicles_with_alarms_near(conn, vehicles, start, end)

    def rebuild(self, vehicle: str) -> AlarmUpdate:
        """Recompute every alarm of ``vehicle`` from all its readings (rules changed)."""
        return self.update_alarms(vehicle, None, None)

    def update_alarms(
        self, vehicle: str, start: datetime | None, end: datetime | None
    ) -> AlarmUpdate:
        config = self._rules(vehicle)
        band = neutral_band(config)
        reach = config.max_sample_spacing
        with self._lock, self._store.engine.begin() as conn:
            lo, hi = start, end
            while True:
                # No run crosses a neutral reading: widen to the nearest ones either side,
                # and over any stored alarm the window touches (it may be split or moved)
                # or comes within a gap of: a run cut by a gap in the readings stored so
                # far ends at the first of these that fills the gap.
                wider_lo = (
                    None if lo is None else storage.neutral_at_or_before(conn, vehicle, lo, band)
                )
                wider_hi = (
                    None if hi is None else storage.neutral_at_or_after(conn, vehicle, hi, band)
                )
                stored = storage.alarms_overlapping(
                    conn,
                    vehicle,
                    None if wider_lo is None else wider_lo - reach,
                    None if wider_hi is None else wider_hi + reach,
                )
                if wider_lo is not None and stored:
                    wider_lo = min(wider_lo, *(s.run_start for s in stored))
                if wider_hi is not None and stored:
                    wider_hi = max(wider_hi, *(s.run_end for s in stored))
                if (wider_lo, wider_hi) == (lo, hi):
                    break
                lo, hi = wider_lo, wider_hi
            report = assess(storage.readings(conn, vehicle, lo, hi), config)
            plan = reconcile(stored, report.alarms)
            if not plan.empty:
                storage.apply_plan(conn, vehicle, plan, self._clock.now())
        by_id = {s.id: s for s in stored}
        touched = [(a.run.start, a.run.end) for a in plan.insert]
        for stored_id, a in plan.update:
            old = by_id[stored_id]
            touched.append((min(old.run_start, a.run.start), max(old.run_end, a.run.end)))
        touched.extend((by_id[i].run_start, by_id[i].run_end) for i in plan.withdraw)
        if not plan.empty:
            log.info(
                "%s: fridge alarms %d new, %d changed, %d withdrawn",
                vehicle,
                len(plan.insert),
                len(plan.update),
                len(plan.withdraw),
            )
        return AlarmUpdate(vehicle, plan, tuple(touched))


class FridgeDayRecorder:
    """Builds and stores one vehicle's daily fridge record (like a 30-day logger's day)."""

    def __init__(self, store: Store, rules: FridgeRulesOf, zone: ZoneInfo) -> None:
        self._store = store
        self._rules = rules
        self._zone = zone

    def record_day(self, vehicle: str, day: date, now: datetime, basis: str) -> None:
        config = self._rules(vehicle)
        band = neutral_band(config)
        local = LocalDay.of(day, self._zone)
        with self._store.engine.begin() as conn:
            # From the last reading before the day, to a reading that ends every run
            # starting in it (so an excursion late in the day is seen whole). That first
            # reading is before midnight even when one falls at midnight: a run going on
            # then is seen to start the day before and is counted there, not again here.
            lo = storage.reading_before(conn, vehicle, local.start)
            hi = storage.neutral_at_or_after(conn, vehicle, local.end, band)
            window = storage.readings(conn, vehicle, lo, hi)
            if not any(local.start <= r.t < local.end for r in window if r.temp_c is not None):
                storage.forget_day(conn, vehicle, day)
                return
            alarms = [
                storage.as_fridge_alarm(s)
                for s in storage.alarms_overlapping(conn, vehicle, local.start, local.end)
                if not s.withdrawn
            ]
            assessed = assess(window, config)
            report = ColdChainReport(assessed.timeline, assessed.excursions, tuple(alarms))
            last = assessed.timeline.last
            # A day still going on is observed up to its latest reading; a day over is
            # observed whole, so what is missing from it counts as no data.
            complete = now >= local.end
            until = (
                local.end if complete or last is None else min(local.end, max(last, local.start))
            )
            (record,) = daily_records(report, config, self._zone, days=[day], until=until)
            storage.save_day(
                conn,
                vehicle,
                record,
                zone=self._zone.key,
                complete=complete,
                basis=basis,
                now=now,
            )

    def data_span(self, vehicle: str) -> tuple[datetime, datetime] | None:
        with self._store.engine.connect() as conn:
            return storage.reading_span(conn, vehicle)

    def unfinished_days(self, before: date) -> list[tuple[str, date]]:
        with self._store.engine.connect() as conn:
            return storage.incomplete_days(conn, before)
