from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.eviction import EVICTION_ORDER, eviction_plan
from protocol.models import Stream
from protocol.topics import STREAMS


def test_nothing_is_given_up_within_the_bound() -> None:
    assert eviction_plan({"gps": 600, "fridge": 400}, 1000) == {}


def test_status_goes_first_then_gps_and_the_fridge_last() -> None:
    usage: dict[Stream, int] = {"status": 100, "gps": 500, "energy": 300, "fridge": 200}
    assert eviction_plan(usage, 1000) == {"status": 100}
    assert eviction_plan(usage, 800) == {"status": 100, "gps": 200}
    assert eviction_plan(usage, 200) == {"status": 100, "gps": 500, "energy": 300}
    assert eviction_plan(usage, 100) == {"status": 100, "gps": 500, "energy": 300, "fridge": 100}


def test_the_order_names_every_stream_once() -> None:
    assert sorted(EVICTION_ORDER) == sorted(STREAMS)
    assert EVICTION_ORDER.index("gps") < EVICTION_ORDER.index("fridge")


def test_a_negative_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        eviction_plan({"gps": 1}, -1)


@given(
    st.dictionaries(st.sampled_from(STREAMS), st.integers(0, 10_000)),
    st.integers(0, 60_000),
)
def test_the_plan_fits_the_bound_and_spares_the_fridge_while_gps_remains(
    usage: dict[Stream, int], max_bytes: int
) -> None:
    plan = eviction_plan(usage, max_bytes)
    left = {s: usage.get(s, 0) - plan.get(s, 0) for s in STREAMS}
    assert all(0 <= plan[s] <= usage[s] for s in plan)
    assert sum(left.values()) <= max_bytes
    # Nothing is given up beyond what the bound requires.
    assert sum(plan.values()) == max(0, sum(usage.values()) - max_bytes)
    if plan.get("fridge", 0) > 0:
        assert left["gps"] == 0
