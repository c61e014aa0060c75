"""Alerts, their notifications and routing, and the links' last state."""

from __future__ import annotations

import sqlalchemy as sa

from ingest.tables.base import ROW_ID, UtcDateTime, metadata

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", ROW_ID, primary_key=True),
    sa.Column("vehicle", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("subject", sa.String(100), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    # The condition's start and end as the data shows them ...
    sa.Column("since", UtcDateTime, nullable=False),
    sa.Column("ended", UtcDateTime),
    # ... and when this system raised and cleared the alert.
    sa.Column("raised_at", UtcDateTime, nullable=False),
    sa.Column("cleared_at", UtcDateTime),
    sa.Column("ack_by", sa.String(100)),
    sa.Column("ack_at", UtcDateTime),
    sa.Column("ack_comment", sa.Text),
    sa.Index(
        "uq_alerts_active",
        "vehicle",
        "kind",
        "subject",
        unique=True,
        sqlite_where=sa.text("cleared_at IS NULL"),
        postgresql_where=sa.text("cleared_at IS NULL"),
    ),
    sa.UniqueConstraint("vehicle", "kind", "subject", "since", name="uq_alerts_episode"),
    sa.Index("ix_alerts_raised", "raised_at"),
)


alert_notifications = sa.Table(
    "alert_notifications",
    metadata,
    sa.Column("id", ROW_ID, primary_key=True),
    sa.Column("alert_id", sa.BigInteger, nullable=False),
    sa.Column("event", sa.String(16), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    # Null until the first attempt failed: due at once, whatever the sender's clock says.
    sa.Column("next_attempt_at", UtcDateTime),
    sa.Column("delivered_at", UtcDateTime),
    sa.Column("abandoned_at", UtcDateTime),
    sa.Column("last_error", sa.Text),
    # webhook, email or sms; for the last two, the address or number it goes to.
    sa.Column("channel", sa.String(16), nullable=False, server_default="webhook"),
    sa.Column("recipient", sa.String(254), nullable=False, server_default=""),
    # One message per alert, step and recipient, however often it is planned: the
    # second insert is skipped. Sent along (Message-ID, $key) so a receiver can drop
    # the copy a retry after a lost answer delivers.
    sa.Column("dedup_key", sa.String(200)),
    sa.UniqueConstraint("dedup_key", name="uq_alert_notifications_dedup_key"),
    sa.Index("ix_alert_notifications_open", "delivered_at", "abandoned_at"),
)


# How far each routed alert went: the step of its route last told and when, and whether
# that step had its reminder.
alert_routing = sa.Table(
    "alert_routing",
    metadata,
    sa.Column("alert_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("route", sa.Integer),
    # The route as it was when the alert was routed: later edits apply to later alerts.
    sa.Column("route_json", sa.Text),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("step_at", UtcDateTime, nullable=False),
    sa.Column("reminded", sa.Boolean, nullable=False),
)


# An operator's people, roles and routes set from the API, in place of the settings'.
operator_routing = sa.Table(
    "operator_routing",
    metadata,
    sa.Column("operator", sa.String(64), primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("changed_by", sa.String(100), nullable=False),
    sa.Column("changed_at", UtcDateTime, nullable=False),
)
