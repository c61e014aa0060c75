"""An alert as stored, and what can happen to it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from ingest.alerts.rules import AlertKind, Severity

AlertEvent = Literal["raised", "cleared"]


@dataclass(frozen=True)
class AlertRecord:
    id: int
    vehicle: str
    operator: str
    kind: AlertKind
    subject: str
    severity: Severity
    message: str
    detail: dict[str, Any]
    since: datetime
    ended: datetime | None
    raised_at: datetime
    cleared_at: datetime | None
    ack_by: str | None
    ack_at: datetime | None
    ack_comment: str | None

    @property
    def active(self) -> bool:
        return self.cleared_at is None

    def as_json(self) -> dict[str, Any]:
        def iso(t: datetime | None) -> str | None:
            return None if t is None else t.isoformat()

        return {
            "id": self.id,
            "vehicle": self.vehicle,
            "operator": self.operator,
            "kind": self.kind,
            "subject": self.subject,
            "severity": self.severity,
            "message": self.message,
            "detail": self.detail,
            "since": iso(self.since),
            "ended": iso(self.ended),
            "raised_at": iso(self.raised_at),
            "cleared_at": iso(self.cleared_at),
            "active": self.active,
        }


@dataclass(frozen=True)
class AlertChange:
    """An alert raised or cleared."""

    event: AlertEvent
    alert: AlertRecord
