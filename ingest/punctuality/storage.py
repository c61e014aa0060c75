"""Punctuality in the system of record: materialised visits, detected stop events with their
evidence, unscheduled stops, and coordinators' changes (SQLAlchemy Core, SQLite and
PostgreSQL).

Everything but ``visit_changes`` is derived (from the timetable and the stored GPS fixes)
and may be re-derived; ``visit_changes`` is what people said and is only ever appended to.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ingest.punctuality import visit_rows
from ingest.punctuality.classification import (
    PunctualityReport,
    PunctualityThresholds,
    Stay,
    stays_from_events,
)
from ingest.punctuality.detector import Evidence, Fix, StopArrival, StopDeparture, StopEvent
from ingest.punctuality.eta import (
    HorizonAccuracy,
    Prediction,
    PredictionOutcome,
    accuracy_by_horizon,
)
from ingest.punctuality.ledger import CoordinatorChange
from ingest.punctuality.schedule import Visit
from ingest.punctuality.visit_rows import UnscheduledStop, VisitRow
from ingest.sql_dialects import insert_or_skip
from ingest.store import Store, emit, points_wanted
from ingest.tables.intake import gps_samples, vehicles
from ingest.tables.punctuality import (
    eta_predictions,
    stop_events,
    unscheduled_stops,
    visit_changes,
    visits,
)

REMOVED_FROM_TIMETABLE = "removed from the timetable"
# A prediction is stored again when it moved this much, or its state changed, or after
# ``REPUBLISH`` (each ``MIN_INTERVAL`` within ``NEAR`` of the arrival) so that every
# horizon has samples; never twice within ``MIN_INTERVAL`` unless its state changed.
PREDICTION_MOVED = timedelta(seconds=30)
PREDICTION_MIN_INTERVAL = timedelta(minutes=1)
PREDICTION_REPUBLISH = timedelta(minutes=5)
PREDICTION_NEAR = timedelta(minutes=30)
# The ETAs' accuracy is served over the arrivals of this last stretch.
ACCURACY_WINDOW = timedelta(days=30)


def _event_row(event: StopEvent, day: date) -> dict[str, Any]:
    ev = event.evidence
    return {
        "vehicle": event.vehicle,
        "day": day,
        "kind": "arrival" if isinstance(event, StopArrival) else "departure",
        "stop": event.stop,
        "t": event.t,
        "evidence_fixes": ev.fixes,
        "evidence_max_distance_m": ev.max_distance_m,
        "evidence_first_fix": ev.first_fix,
        "evidence_last_fix": ev.last_fix,
        "earliest": event.earliest if isinstance(event, StopArrival) else None,
        "latest": event.latest if isinstance(event, StopArrival) else None,
    }


def _event_of(row: Any) -> StopEvent:
    m = row._mapping  # Row.t is SQLAlchemy's tuple view, not the column named t
    evidence = Evidence(
        m["evidence_fixes"],
        m["evidence_max_distance_m"],
        m["evidence_first_fix"],
        m["evidence_last_fix"],
    )
    if m["kind"] == "arrival":
        return StopArrival(m["vehicle"], m["stop"], m["t"], evidence, m["earliest"], m["latest"])
    return StopDeparture(m["vehicle"], m["stop"], m["t"], evidence)


def evidence(conn: Connection, vehicle: str, kind: str, t: datetime) -> Evidence | None:
    """What made the detector decide the vehicle's ``kind`` event at ``t``."""
    c = stop_events.c
    query = sa.select(stop_events).where(c.vehicle == vehicle, c.kind == kind, c.t == t)
    row = conn.execute(query).first()
    return _event_of(row).evidence if row is not None else None


def prediction_outcomes_of_days(
    conn: Connection, first: date, last: date, vehicle: str | None = None
) -> list[tuple[str, PredictionOutcome]]:
    """(operator, outcome) of the published predictions of the visits of ``first`` to
    ``last`` (local dates) that the bus arrived at."""
    e, v = eta_predictions.c, visits.c
    query = (
        sa.select(
            vehicles.c.operator,
            e.rank,
            e.made_at,
            e.predicted_arrival,
            e.scheduled_arrival,
            e.arrival,
        )
        .select_from(
            eta_predictions.join(visits, v.id == e.visit_id).join(
                vehicles, vehicles.c.id == v.vehicle
            )
        )
        .where(v.day >= first, v.day <= last, e.arrival.is_not(None))
    )
    if vehicle is not None:
        query = query.where(v.vehicle == vehicle)
    return [
        (
            r.operator,
            PredictionOutcome(
                r.rank, r.made_at, r.predicted_arrival, r.scheduled_arrival, r.arrival
            ),
        )
        for r in conn.execute(query)
    ]


class PunctualityStore:
    """Reads and writes the punctuality tables of a :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine

    # --- timetable ------------------------------------------------------------------------

    def materialise(
        self,
        planned: Sequence[Visit],
        first: date,
        last: date,
        thresholds: PunctualityThresholds,
    ) -> None:
        """Make the visits of ``first``..``last`` those of ``planned``, keeping what was
        derived or said about visits that stay. A visit that left the timetable goes if no
        one has touched it, else it stays, cancelled as removed."""
        c = visits.c
        with self.engine.begin() as conn:
            existing = {
                r.id
                for r in conn.execute(sa.select(c.id).where(c.day >= first, c.day <= last)).all()
            }
            rows = [
                {
                    "id": v.id,
                    "vehicle": v.vehicle,
                    "stop": v.stop,
                    "day": v.day,
                    "scheduled_arrival": v.scheduled_arrival,
                    "scheduled_departure": v.scheduled_departure,
                    "origin": v.origin,
                    "changed": v.changed,
                    "cancelled_reason": v.cancelled_reason,
                    "on_time_from_s": thresholds.on_time_from.total_seconds(),
                    "on_time_until_s": thresholds.on_time_until.total_seconds(),
                    "closes_at": v.scheduled_departure + thresholds.match_after_departure,
                    "opens_at": v.scheduled_arrival - thresholds.match_before,
                }
                for v in planned
            ]
            new = [r for r in rows if r["id"] not in existing]
            if new:
                # Another ingest sharing the database may be materialising the same days.
                conn.execute(insert_or_skip(conn, visits), new)
            kept = [r for r in rows if r["id"] in existing]
            if kept:
                columns = [k for k in kept[0] if k != "id"]
                conn.execute(
                    visits.update()
                    .where(c.id == sa.bindparam("visit_id"))
                    .values({k: sa.bindparam(k) for k in columns}),
                    [{"visit_id": r["id"], **{k: r[k] for k in columns}} for r in kept],
                )
            gone = existing - {r["id"] for r in rows}
            if gone:
                touched = {
                    r.visit_id
                    for r in conn.execute(
                        sa.select(visit_changes.c.visit_id).where(
                            visit_changes.c.visit_id.in_(gone)
                        )
                    )
                }
                if gone - touched:
                    conn.execute(visits.delete().where(c.id.in_(gone - touched)))
                if touched:
                    conn.execute(
                        visits.update()
                        .where(c.id.in_(touched))
                        .values(cancelled_reason=REMOVED_FROM_TIMETABLE)
                    )

    def planned_visits(self, vehicle: str, day: date) -> list[Visit]:
        c = visits.c
        query = (
            sa.select(visits)
            .where(c.vehicle == vehicle, c.day == day)
            .order_by(c.scheduled_arrival, c.id)
        )
        with self.engine.connect() as conn:
            return [
                Visit(
                    id=r.id,
                    vehicle=r.vehicle,
                    stop=r.stop,
                    day=r.day,
                    scheduled_arrival=r.scheduled_arrival,
                    scheduled_departure=r.scheduled_departure,
                    origin=r.origin,
                    changed=r.changed,
                    cancelled_reason=r.cancelled_reason,
                )
                for r in conn.execute(query)
            ]

    def days_with_visits_closing(
        self, vehicle: str, after: datetime, until: datetime, longest: timedelta
    ) -> set[date]:
        """The days of the vehicle's visits whose matching window closes in ``(after,
        until]``; ``longest`` bounds a visit's window (from its scheduled arrival), so the
        lookup stays a range of the (vehicle, scheduled arrival) index."""
        c = visits.c
        query = (
            sa.select(c.day)
            .where(
                c.vehicle == vehicle,
                c.scheduled_arrival > after - longest,
                c.scheduled_arrival <= until,
                c.closes_at > after,
                c.closes_at <= until,
            )
            .distinct()
        )
        with self.engine.connect() as conn:
            return {r.day for r in conn.execute(query)}

    def cancelled_by_coordinators(self, visit_ids: Iterable[str]) -> set[str]:
        ids = list(visit_ids)
        if not ids:
            return set()
        c = visit_changes.c
        query = sa.select(c.visit_id).where(c.visit_id.in_(ids), c.kind == "cancel")
        with self.engine.connect() as conn:
            return {r.visit_id for r in conn.execute(query)}

    # --- fixes and events -----------------------------------------------------------------

    def fixes(self, vehicle: str, start: datetime, end: datetime | None = None) -> list[Fix]:
        """The vehicle's stored fixes from ``start`` (inclusive) to ``end`` (exclusive)."""
        c = gps_samples.c
        query = sa.select(
            c.t.label("fix_t"), c.lat, c.lon, c.speed_mps, c.hdop, c.fix_mode, c.quality
        ).where(c.vehicle == vehicle, c.t >= start)
        if end is not None:
            query = query.where(c.t < end)
        with self.engine.connect() as conn:
            return [
                Fix(r.fix_t, r.lat, r.lon, r.speed_mps, r.hdop)
                for r in conn.execute(query.order_by(c.t))
                if r.fix_mode != 1 and r.quality != 0
            ]

    def newest_fix_time(self, vehicle: str) -> datetime | None:
        c = gps_samples.c
        query = sa.select(sa.func.max(c.t)).where(c.vehicle == vehicle)
        with self.engine.connect() as conn:
            newest: datetime | None = conn.execute(query).scalar_one()
        return newest

    def add_events(self, events: Sequence[tuple[StopEvent, date]]) -> None:
        if not events:
            return
        with self.engine.begin() as conn:
            conn.execute(
                insert_or_skip(conn, stop_events),
                [_event_row(e, day) for e, day in events],
            )

    def replace_events(self, vehicle: str, day: date, events: Sequence[StopEvent]) -> None:
        c = stop_events.c
        with self.engine.begin() as conn:
            conn.execute(stop_events.delete().where(c.vehicle == vehicle, c.day == day))
            if events:
                conn.execute(
                    insert_or_skip(conn, stop_events),
                    [_event_row(e, day) for e in events],
                )

    def events(self, vehicle: str, first: date, last: date | None = None) -> list[StopEvent]:
        c = stop_events.c
        query = sa.select(stop_events).where(
            c.vehicle == vehicle, c.day >= first, c.day <= (last or first)
        )
        with self.engine.connect() as conn:
            return [_event_of(r) for r in conn.execute(query.order_by(c.t, c.kind))]

    def stay_across(self, vehicle: str, day: date) -> list[StopEvent]:
        """The events around ``day`` that belong to a stay crossing its midnights: the
        arrival of a stay still open when the day began (the latest event before it, if an
        arrival) and the departure ending a stay still open when it ended (the first event
        after it, if a departure)."""
        c = stop_events.c
        before = (
            sa.select(stop_events)
            .where(c.vehicle == vehicle, c.day < day)
            .order_by(c.t.desc(), c.kind.desc())
            .limit(1)
        )
        after = (
            sa.select(stop_events)
            .where(c.vehicle == vehicle, c.day > day)
            .order_by(c.t, c.kind.desc())
            .limit(1)
        )
        found: list[StopEvent] = []
        with self.engine.connect() as conn:
            row = conn.execute(before).first()
            if row is not None and row._mapping["kind"] == "arrival":
                found.append(_event_of(row))
            row = conn.execute(after).first()
            if row is not None and row._mapping["kind"] == "departure":
                found.append(_event_of(row))
        return found

    def event_days(self, first: date, last: date) -> list[tuple[str, date]]:
        c = stop_events.c
        query = (
            sa.select(c.vehicle, c.day)
            .where(c.day >= first, c.day <= last)
            .group_by(c.vehicle, c.day)
            .order_by(c.day, c.vehicle)
        )
        with self.engine.connect() as conn:
            return [(r.vehicle, r.day) for r in conn.execute(query)]

    def evidence(self, vehicle: str, kind: str, t: datetime) -> Evidence | None:
        with self.engine.connect() as conn:
            return evidence(conn, vehicle, kind, t)

    # --- outcomes -------------------------------------------------------------------------

    def save_outcomes(
        self, vehicle: str, day: date, report: PunctualityReport, *, known_until: datetime
    ) -> None:
        """The detected arrival and departure of each of the day's visits, and the stays
        that no visit explains. With time series, each visit's point as it now stands
        (coordinators' changes applied; ``known_until``, how far the vehicle's data
        reaches, tells a visit still pending from a missed one)."""
        c = visits.c
        with self.engine.begin() as conn:
            if report.outcomes:
                conn.execute(
                    visits.update()
                    .where(c.id == sa.bindparam("visit_id"))
                    .values(
                        detected_arrival=sa.bindparam("arrival"),
                        detected_departure=sa.bindparam("departure"),
                        detected_arrival_earliest=sa.bindparam("earliest"),
                        detected_arrival_latest=sa.bindparam("latest"),
                    ),
                    [
                        {
                            "visit_id": o.visit.id,
                            "arrival": o.arrival,
                            "departure": o.departure,
                            "earliest": o.arrival_earliest,
                            "latest": o.arrival_latest,
                        }
                        for o in report.outcomes
                    ],
                )
            u = unscheduled_stops.c
            conn.execute(unscheduled_stops.delete().where(u.vehicle == vehicle, u.day == day))
            if report.unscheduled:
                conn.execute(
                    unscheduled_stops.insert(),
                    [
                        {
                            "vehicle": vehicle,
                            "day": day,
                            "stop": s.stop,
                            "arrival": s.arrival,
                            "departure": s.departure,
                            "arrival_earliest": s.arrival_earliest,
                            "arrival_latest": s.arrival_latest,
                        }
                        for s in report.unscheduled
                    ],
                )
            if points_wanted(conn) and report.outcomes:
                ids = [o.visit.id for o in report.outcomes]
                rows = conn.execute(visit_rows.visit_query().where(c.id.in_(ids))).all()
                said = visit_rows.changes(conn, ids)
                emit(
                    conn,
                    [
                        visit_rows.visit_standing(
                            visit_rows.visit_row(r), said.get(r.id, []), known_until
                        )
                        for r in rows
                    ],
                )

    def save_etas(
        self,
        vehicle: str,
        day: date,
        predictions: Sequence[Prediction],
        position_at: datetime,
    ) -> None:
        """The vehicle's current predictions on its visits (the others' are cleared), and
        those worth publishing in the accuracy record (see ``PREDICTION_*``)."""
        c = visits.c
        with self.engine.begin() as conn:
            conn.execute(
                visits.update()
                .where(c.vehicle == vehicle, c.day >= day - timedelta(days=1), c.eta.is_not(None))
                .values(
                    eta=None,
                    eta_from=None,
                    eta_distance_m=None,
                    eta_state=None,
                    eta_earliest=None,
                    eta_latest=None,
                    eta_source=None,
                )
            )
            if not predictions:
                return
            conn.execute(
                visits.update()
                .where(c.id == sa.bindparam("visit_id"))
                .values(
                    eta=sa.bindparam("expected"),
                    eta_from=sa.bindparam("position_at"),
                    eta_distance_m=sa.bindparam("distance"),
                    eta_state=sa.bindparam("state"),
                    eta_earliest=sa.bindparam("earliest"),
                    eta_latest=sa.bindparam("latest"),
                    eta_source=sa.bindparam("source"),
                ),
                [
                    {
                        "visit_id": p.visit.id,
                        "expected": p.expected_arrival,
                        "position_at": position_at,
                        "distance": p.road_distance_m,
                        "state": p.state,
                        "earliest": p.earliest,
                        "latest": p.latest,
                        "source": p.source,
                    }
                    for p in predictions
                ],
            )
            self._publish(conn, vehicle, predictions, position_at)

    @staticmethod
    def _publish(
        conn: Connection, vehicle: str, predictions: Sequence[Prediction], made_at: datetime
    ) -> None:
        e = eta_predictions.c
        ids = [p.visit.id for p in predictions]
        newest = (
            sa.select(e.visit_id, sa.func.max(e.id).label("last"))
            .where(e.visit_id.in_(ids))
            .group_by(e.visit_id)
            .subquery()
        )
        last = {
            r.visit_id: r
            for r in conn.execute(sa.select(eta_predictions).join(newest, newest.c.last == e.id))
        }
        rows = []
        for p in predictions:
            before = last.get(p.visit.id)
            if before is not None:
                since = made_at - before.made_at
                moved = abs(p.expected_arrival - before.predicted_arrival) >= PREDICTION_MOVED
                if since < timedelta(0):
                    continue
                # Close to the arrival every minute counts: each horizon needs its samples.
                near = p.expected_arrival - made_at < PREDICTION_NEAR
                again = PREDICTION_MIN_INTERVAL if near else PREDICTION_REPUBLISH
                if before.state == p.state and (
                    since < PREDICTION_MIN_INTERVAL or (not moved and since < again)
                ):
                    continue
            rows.append(
                {
                    "visit_id": p.visit.id,
                    "vehicle": vehicle,
                    "rank": p.rank,
                    "made_at": made_at,
                    "predicted_arrival": p.expected_arrival,
                    "earliest": p.earliest,
                    "latest": p.latest,
                    "state": p.state,
                    "source": p.source,
                    "scheduled_arrival": p.visit.scheduled_arrival,
                }
            )
        if rows:
            conn.execute(eta_predictions.insert(), rows)

    def settle_predictions(self, arrivals: Mapping[str, datetime | None]) -> None:
        """Record, for each visit's published predictions, the arrival they are judged
        against and their error (None: the visit has no arrival, or no longer has one)."""
        if not arrivals:
            return
        e = eta_predictions.c
        ids = list(arrivals)
        with self.engine.begin() as conn:
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                rows = conn.execute(
                    sa.select(e.id, e.visit_id, e.predicted_arrival, e.arrival).where(
                        e.visit_id.in_(chunk)
                    )
                ).all()
                changed = [
                    {
                        "row_id": r.id,
                        "arrival": arrivals[r.visit_id],
                        "error_s": None
                        if arrivals[r.visit_id] is None
                        else (r.predicted_arrival - arrivals[r.visit_id]).total_seconds(),
                    }
                    for r in rows
                    if r.arrival != arrivals[r.visit_id]
                ]
                if changed:
                    conn.execute(
                        eta_predictions.update()
                        .where(e.id == sa.bindparam("row_id"))
                        .values(arrival=sa.bindparam("arrival"), error_s=sa.bindparam("error_s")),
                        changed,
                    )

    def prediction_outcomes(
        self, start: datetime, end: datetime, vehicles: Collection[str] | None = None
    ) -> list[PredictionOutcome]:
        """The published predictions of visits the bus arrived at in ``[start, end)``."""
        e = eta_predictions.c
        query = sa.select(
            e.rank, e.made_at, e.predicted_arrival, e.scheduled_arrival, e.arrival
        ).where(e.arrival >= start, e.arrival < end, e.arrival.is_not(None))
        if vehicles is not None:
            query = query.where(e.vehicle.in_(list(vehicles)))
        with self.engine.connect() as conn:
            return [
                PredictionOutcome(
                    r.rank, r.made_at, r.predicted_arrival, r.scheduled_arrival, r.arrival
                )
                for r in conn.execute(query)
            ]

    def prediction_outcomes_of_days(
        self, first: date, last: date, vehicle: str | None = None
    ) -> list[tuple[str, PredictionOutcome]]:
        with self.engine.connect() as conn:
            return prediction_outcomes_of_days(conn, first, last, vehicle)

    def recent_accuracy(
        self, now: datetime, over: timedelta = ACCURACY_WINDOW
    ) -> list[HorizonAccuracy]:
        """The accuracy by horizon of the predictions of arrivals in the last ``over``."""
        return accuracy_by_horizon(self.prediction_outcomes(now - over, now))

    def published_predictions(self, visit_id: str) -> list[tuple[datetime, datetime, str]]:
        """(made at, predicted arrival, state) of each prediction published for a visit."""
        e = eta_predictions.c
        query = (
            sa.select(e.made_at, e.predicted_arrival, e.state)
            .where(e.visit_id == visit_id)
            .order_by(e.made_at, e.id)
        )
        with self.engine.connect() as conn:
            return [(r.made_at, r.predicted_arrival, r.state) for r in conn.execute(query)]

    def stays(self, vehicle: str, since: date) -> list[Stay]:
        """The vehicle's stays (arrival, departure) since ``since``, in time order."""
        c = stop_events.c
        query = sa.select(stop_events).where(c.vehicle == vehicle, c.day >= since)
        with self.engine.connect() as conn:
            events = [_event_of(r) for r in conn.execute(query.order_by(c.t))]
        return stays_from_events(events)

    # --- reading for coordinators ---------------------------------------------------------
    # A coordinator's command runs through :mod:`ingest.punctuality.visit_rows` inside the
    # caller's transaction; these read in one of their own.

    def operator_of(self, vehicle: str) -> str | None:
        with self.engine.connect() as conn:
            return visit_rows.operator_of(conn, vehicle)

    def visit(self, visit_id: str) -> VisitRow | None:
        with self.engine.connect() as conn:
            return visit_rows.visit(conn, visit_id)

    def visits_between(self, first: date, last: date, vehicle: str | None = None) -> list[VisitRow]:
        with self.engine.connect() as conn:
            return visit_rows.visits_between(conn, first, last, vehicle)

    def visits_arriving_between(
        self, vehicle: str, start: datetime, end: datetime
    ) -> list[VisitRow]:
        """The vehicle's visits scheduled to arrive in ``[start, end)`` (UTC)."""
        with self.engine.connect() as conn:
            return visit_rows.visits_arriving_between(conn, vehicle, start, end)

    def changes(self, visit_ids: Iterable[str]) -> dict[str, list[CoordinatorChange]]:
        with self.engine.connect() as conn:
            return visit_rows.changes(conn, visit_ids)

    def record_change(
        self,
        visit_id: str,
        decide: Callable[[VisitRow, list[CoordinatorChange]], CoordinatorChange],
    ) -> CoordinatorChange | None:
        """:func:`visit_rows.record_change` in a transaction of its own."""
        with self.engine.begin() as conn:
            return visit_rows.record_change(conn, visit_id, decide)

    def unscheduled(
        self, first: date, last: date, vehicle: str | None = None
    ) -> list[UnscheduledStop]:
        with self.engine.connect() as conn:
            return visit_rows.unscheduled(conn, first, last, vehicle)
