"""The stream registry is complete, and every consumer of streams reads it: a stream added
to the wire contract and missed by batching, eviction, the intake or the live state makes
one of these fail."""

from __future__ import annotations

import typing
from datetime import UTC, datetime

import sqlalchemy as sa
from pydantic import TypeAdapter

from edge_agent import batching
from edge_agent.eviction import EVICTION_ORDER
from ingest.store import Store
from ingest.store.intake import SAMPLE_TABLES
from ingest.tables.intake import vehicle_state
from protocol.models import Batch, Stream
from protocol.streams import BY_NAME, STREAMS, LiveState

NAMES = set(typing.get_args(Stream))


def test_every_stream_of_the_contract_is_registered_once() -> None:
    assert [s.name for s in STREAMS] == list(BY_NAME)
    assert set(BY_NAME) == NAMES
    for spec in STREAMS:
        assert spec.batch.model_fields["stream"].default == spec.name
        assert spec.batch.model_fields["samples"].annotation == list[spec.sample]
    assert sorted(s.eviction_rank for s in STREAMS) == list(range(1, len(STREAMS) + 1))


def test_the_union_of_batches_takes_every_stream() -> None:
    batch = TypeAdapter(Batch)
    t = datetime(2026, 12, 4, 9, 0, tzinfo=UTC).isoformat()
    examples = {
        "gps": {"t": t, "lat": 49.2, "lon": 1.7, "fix_mode": 3},
        "energy": {"t": t, "voltage_v": 13.1},
        "fridge": {"t": t, "temp_c": 5.0},
        "status": {"t": t, "online": True},
        "event": {"t": t, "kind": "door"},
        "obd": {"t": t, "fuel_rate_l_per_h": 4.5},
    }
    assert set(examples) == NAMES
    for name, sample in examples.items():
        found = batch.validate_python(
            {"vehicle": "vexin-01", "seq": 0, "stream": name, "samples": [sample]}
        )
        assert isinstance(found, BY_NAME[name].batch)


def test_the_agent_batches_and_evicts_every_stream() -> None:
    assert set(batching._BATCH_TYPES) == NAMES
    assert set(batching._SAMPLE_LISTS) == NAMES
    assert set(batching._STREAM_OF.values()) == NAMES
    assert sorted(EVICTION_ORDER) == sorted(NAMES)
    assert EVICTION_ORDER[-1] == "fridge"  # the cold chain's record is kept to the last


STATE_COLUMN = {
    "position": "gps_t",
    "battery": "energy_t",
    "fridge": "fridge_t",
    "link": "status_t",
}


def test_the_ingest_keeps_and_follows_every_stream(store: Store) -> None:
    """Every stream kept raw has its table; every stream that moves a live state moves it
    when a batch of it is stored."""
    assert set(SAMPLE_TABLES) == {s.name for s in STREAMS if s.kept_raw}
    assert set(STATE_COLUMN) == set(typing.get_args(LiveState))
    t = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    samples = {
        "gps": {"t": t, "lat": 49.2, "lon": 1.7, "fix_mode": 3},
        "energy": {"t": t, "voltage_v": 13.1, "soc_pct": 80.0},
        "fridge": {"t": t, "temp_c": 5.0},
        "status": {"t": t, "online": True},
        "event": {"t": t, "kind": "door"},
        "obd": {"t": t, "fuel_rate_l_per_h": 4.5},
    }
    adapter = TypeAdapter(Batch)
    for spec in STREAMS:
        before = _state(store)
        batch = adapter.validate_python(
            {"vehicle": "vexin-01", "seq": 0, "stream": spec.name, "samples": [samples[spec.name]]}
        )
        assert store.save_batch(batch, t)
        after = _state(store)
        if spec.live_state is not None:
            column = STATE_COLUMN[spec.live_state]
            assert before.get(column) is None and after[column] is not None, spec.name
        if spec.kept_raw:
            table = SAMPLE_TABLES[spec.name]
            with store.engine.connect() as conn:
                count = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
            assert count == 1, spec.name


def _state(store: Store) -> dict[str, object]:
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(vehicle_state).where(vehicle_state.c.vehicle == "vexin-01")
        ).first()
    return {} if row is None else dict(row._mapping)
