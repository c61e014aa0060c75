"""Property: whatever a bus sends, at and past the limits of every field of every stream,
is either stored or quarantined with a reason the protocol gives, and a good batch after
it is stored. On SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings

from ingest.pipeline import Ingestor, Message
from ingest.store import SAMPLE_TABLES, Store
from ingest.tables.intake import batches, vehicle_state
from ingest.validation import Limits
from protocol import GpsBatch, GpsSample, encode, topic_for
from protocol.models import Stream
from tests.ingest.field_limits import SAMPLE_MODELS, batch_payload, every_field_has_a_strategy

# Wide open, so that times at the ends of the calendar reach the store when the
# protocol lets them through.
ANY_TIME = Limits(max_future_skew=timedelta(days=4_000_000), max_age=timedelta(days=4_000_000))
GOOD_SEQ = itertools.count(7 * 10**12)


def good(vehicle: str = "caux-01") -> Message:
    batch = GpsBatch(
        vehicle=vehicle,
        seq=next(GOOD_SEQ),
        samples=[GpsSample(t=datetime.now(UTC), lat=49.6, lon=0.75, fix_mode=3)],
    )
    return Message(topic_for(vehicle, "gps"), encode(batch), datetime.now(UTC))


def test_every_field_of_every_stream_is_generated() -> None:
    covered = every_field_has_a_strategy()
    assert len(covered) == sum(len(m.model_fields) for m in SAMPLE_MODELS.values())
    assert {"gps.t", "energy.alarm_reason", "status.counters", "event.detail"} <= set(covered)


def stored_key(store: Store, stream: Stream, sent_seq: object) -> bool:
    seq = int(sent_seq) if isinstance(sent_seq, str | int | float) else -1  # "7" is read as 7
    if not 0 <= seq < 2**63:
        return False
    c = batches.c
    query = sa.select(sa.func.count()).where(
        c.vehicle == "vexin-01", c.stream == stream, c.seq == seq
    )
    with store.engine.connect() as conn:
        return conn.execute(query).scalar_one() == 1


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sent=batch_payload())
def test_a_batch_at_the_limits_is_stored_or_refused_with_a_reason_and_good_ones_follow(
    store: Store, sent: tuple[Stream, bytes]
) -> None:
    stream, payload = sent
    with store.engine.begin() as conn:  # each example on its own: no duplicates from the last
        for table in (batches, vehicle_state, *SAMPLE_TABLES.values()):
            conn.execute(table.delete().where(table.c.vehicle == "vexin-01"))
    ingestor = Ingestor(store, limits=ANY_TIME)
    before = sum(store.rejection_counts().values())
    now = datetime.now(UTC)
    outcome, with_it = ingestor.handle_many(
        [Message(topic_for("vexin-01", stream), payload, now), good()]
    )
    assert with_it.status == "stored"
    event(f"{stream}: {outcome.status}")
    if outcome.status == "rejected":
        # The protocol, not the database, says what is wrong: identical on both.
        assert outcome.reason not in ("", "store_failed"), outcome
        assert sum(store.rejection_counts().values()) == before + 1
    else:
        assert outcome.status in ("stored", "duplicate")
        assert stored_key(store, stream, json.loads(payload)["seq"])
        # What was stored reads back, and the live views still answer.
        if stream in SAMPLE_TABLES:
            table = SAMPLE_TABLES[stream]
            with store.engine.connect() as conn:
                conn.execute(sa.select(table).where(table.c.vehicle == "vexin-01")).all()
    store.vehicles()
    store.positions()
    (after,) = ingestor.handle_many([good("vexin-01")])
    assert after.status == "stored"
