"""Checks a decoded batch against what the cloud knows: the fleet and the clock.

Pure: the caller passes the known vehicles and the time of receipt.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from protocol.codec import ProtocolError
from protocol.wire import Batch, decode


@dataclass(frozen=True)
class Limits:
    max_future_skew: timedelta = timedelta(minutes=5)
    max_age: timedelta = timedelta(days=30)


def validate_message(
    topic: str,
    payload: bytes,
    known_vehicles: Collection[str],
    received_at: datetime,
    limits: Limits = Limits(),
) -> Batch:
    """Return the batch or raise :class:`ProtocolError` with a reason and a detail."""
    batch = decode(payload, topic)
    if batch.vehicle not in known_vehicles:
        raise ProtocolError("unknown_vehicle", f"vehicle {batch.vehicle!r} is not in the fleet")
    times = [s.t for s in batch.samples]
    newest, oldest = max(times), min(times)
    if newest > _shifted(received_at, limits.max_future_skew):
        raise ProtocolError(
            "future_timestamp",
            f"sample at {newest.isoformat()} is more than {limits.max_future_skew} "
            f"after reception ({received_at.isoformat()})",
        )
    if oldest < _shifted(received_at, -limits.max_age):
        raise ProtocolError(
            "stale_timestamp",
            f"sample at {oldest.isoformat()} is older than {limits.max_age.days} days",
        )
    return batch


def _shifted(t: datetime, by: timedelta) -> datetime:
    """``t + by``, held at the ends of the calendar (limits may be set very wide)."""
    try:
        return t + by
    except OverflowError:
        return (datetime.max if by > timedelta(0) else datetime.min).replace(tzinfo=UTC)
