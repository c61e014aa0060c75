"""Visits, detected stops, coordinators' changes and published ETAs."""

from __future__ import annotations

import sqlalchemy as sa

from ingest.tables.base import UtcDateTime, metadata

visits = sa.Table(
    "visits",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("vehicle", sa.String(64), nullable=False),
    sa.Column("stop", sa.String(64), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("scheduled_arrival", UtcDateTime, nullable=False),
    sa.Column("scheduled_departure", UtcDateTime, nullable=False),
    sa.Column("origin", sa.String(16), nullable=False),
    sa.Column("changed", sa.Boolean, nullable=False),
    sa.Column("cancelled_reason", sa.String(200)),
    # The band and window that class this visit, so the API needs no ingest settings.
    sa.Column("on_time_from_s", sa.Float, nullable=False),
    sa.Column("on_time_until_s", sa.Float, nullable=False),
    sa.Column("closes_at", UtcDateTime, nullable=False),
    sa.Column("opens_at", UtcDateTime),
    sa.Column("detected_arrival", UtcDateTime),
    sa.Column("detected_departure", UtcDateTime),
    # Bounds of a detected arrival estimated inside a GPS outage (null: observed).
    sa.Column("detected_arrival_earliest", UtcDateTime),
    sa.Column("detected_arrival_latest", UtcDateTime),
    sa.Column("eta", UtcDateTime),
    sa.Column("eta_from", UtcDateTime),
    sa.Column("eta_distance_m", sa.Float),
    sa.Column("eta_state", sa.String(16)),
    sa.Column("eta_earliest", UtcDateTime),
    sa.Column("eta_latest", UtcDateTime),
    sa.Column("eta_source", sa.String(16)),
    sa.Index("ix_visits_day_vehicle", "day", "vehicle"),
    sa.Index("ix_visits_vehicle_arrival", "vehicle", "scheduled_arrival"),
)


stop_events = sa.Table(
    "stop_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("vehicle", sa.String(64), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("stop", sa.String(64), nullable=False),
    sa.Column("t", UtcDateTime, nullable=False),
    sa.Column("evidence_fixes", sa.Integer, nullable=False),
    sa.Column("evidence_max_distance_m", sa.Float, nullable=False),
    sa.Column("evidence_first_fix", UtcDateTime, nullable=False),
    sa.Column("evidence_last_fix", UtcDateTime, nullable=False),
    sa.Column("earliest", UtcDateTime),
    sa.Column("latest", UtcDateTime),
    sa.UniqueConstraint("vehicle", "kind", "t", name="uq_stop_events_vehicle_kind_t"),
    sa.Index("ix_stop_events_vehicle_day", "vehicle", "day"),
)


unscheduled_stops = sa.Table(
    "unscheduled_stops",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("vehicle", sa.String(64), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("stop", sa.String(64), nullable=False),
    sa.Column("arrival", UtcDateTime, nullable=False),
    sa.Column("departure", UtcDateTime),
    sa.Column("arrival_earliest", UtcDateTime),
    sa.Column("arrival_latest", UtcDateTime),
    sa.Index("ix_unscheduled_day_vehicle", "day", "vehicle"),
)


visit_changes = sa.Table(
    "visit_changes",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("visit_id", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("who", sa.String(100), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("arrival", UtcDateTime),
    sa.Column("departure", UtcDateTime),
    sa.Column("patients_seen", sa.Integer),
    # A confirmation's or a count's note; ``reason`` is a correction's or cancellation's.
    sa.Column("note", sa.Text),
    # What the public sees of a cancellation or a delay ("" withdraws it).
    sa.Column("public_message", sa.Text),
    # With an attendance: consultations by profile, referrals, the kind of day and the
    # team's ids, as JSON (counts only, never who the patients were).
    sa.Column("consultations", sa.Text),
    sa.Index("ix_visit_changes_visit", "visit_id", "id"),
)

# Monthly consultations by profile from before the system, imported from the operator's
# figures so that the three-year evaluation is complete.
imported_consultations = sa.Table(
    "imported_consultations",
    metadata,
    sa.Column("vehicle", sa.String(64), primary_key=True),
    sa.Column("month", sa.Date, primary_key=True),
    sa.Column("profile", sa.String(40), primary_key=True),
    sa.Column("consultations", sa.Integer, nullable=False),
    sa.Column("imported_at", UtcDateTime, nullable=False),
    sa.Column("source", sa.String(200), nullable=False),
)


# Each ETA published for a visit, and once the bus arrived, how far off it was.
eta_predictions = sa.Table(
    "eta_predictions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("visit_id", sa.String(200), nullable=False),
    sa.Column("vehicle", sa.String(64), nullable=False),
    sa.Column("rank", sa.Integer, nullable=False),
    sa.Column("made_at", UtcDateTime, nullable=False),
    sa.Column("predicted_arrival", UtcDateTime, nullable=False),
    sa.Column("earliest", UtcDateTime, nullable=False),
    sa.Column("latest", UtcDateTime),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("scheduled_arrival", UtcDateTime, nullable=False),
    sa.Column("arrival", UtcDateTime),
    sa.Column("error_s", sa.Float),
    sa.Index("ix_eta_predictions_visit", "visit_id", "made_at"),
    sa.Index("ix_eta_predictions_arrival", "arrival"),
)
