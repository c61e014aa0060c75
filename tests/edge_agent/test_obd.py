"""The OBD-II stream: the ELM327's answers decoded (and refused when they are not
answers), the reader against a simulated adapter on a pseudo-terminal (engine on, off,
talking nonsense), and an agent's fuel readings stored by the ingest."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.agent import Agent
from edge_agent.counters import DeviceCounters
from edge_agent.obd_reader import PIDS, ObdReader, decode_response
from firmware_config.agent import AgentConfig, BrokerConfig, OutboxConfig
from firmware_config.obd import ObdPortConfig
from ingest.store import Store
from ingest.tables.intake import obd_samples
from protocol.models import ObdSample
from simulators.obd_device import Elm327Simulator, Engine
from tests.support.live import running_ingest
from tests.support.mosquitto import Mosquitto
from tests.support.wait import wait_for

FUEL, LEVEL, ODOMETER = PIDS


@pytest.mark.parametrize(
    ("pid", "text", "value"),
    [
        (FUEL, "415E0190", 20.0),
        (FUEL, "41 5E 01 90 \r", 20.0),
        (FUEL, "SEARCHING...\r415E0000", 0.0),
        (FUEL, "415EFFFF", 3276.75),
        (LEVEL, "412F80", 50.2),
        (LEVEL, "412FFF", 100.0),
        (ODOMETER, "41A600012D5F", 7715.1),  # 0x12D5F = 77151
        (ODOMETER, "41A6FFFFFFFF", 429496729.5),
        (FUEL, "NO DATA", None),
        (FUEL, "SEARCHING...\rUNABLE TO CONNECT", None),
        (FUEL, "STOPPED", None),
        (FUEL, "?", None),
    ],
)
def test_answers_are_decoded(pid: object, text: str, value: float | None) -> None:
    assert decode_response(pid, text) == value  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pid", "text", "words"),
    [
        (FUEL, "412F80", "no answer"),  # the answer to another PID
        (FUEL, "415E01", "bytes"),
        (FUEL, "415EZZ90", "hexadecimal"),
        (FUEL, "", "no answer"),
        (FUEL, "415E\x0090", "hexadecimal"),
    ],
)
def test_what_is_not_an_answer_is_refused(pid: object, text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        decode_response(pid, text)  # type: ignore[arg-type]


@given(st.text(max_size=60))
def test_any_text_is_a_value_none_or_a_refusal(text: str) -> None:
    for pid in PIDS:
        try:
            value = decode_response(pid, text)
        except ValueError:
            continue
        assert value is None or value >= 0


@pytest.fixture
def adapter() -> Iterator[Elm327Simulator]:
    device = Elm327Simulator(Engine()).start()
    yield device
    device.stop()


def reading(adapter: Elm327Simulator) -> tuple[list[ObdSample], DeviceCounters, threading.Event]:
    samples: list[ObdSample] = []
    counters = DeviceCounters()
    stop = threading.Event()
    reader = ObdReader(
        ObdPortConfig(port=adapter.path, interval_s=0.5, timeout_s=1), samples.append, counters
    )
    threading.Thread(target=reader.run, args=(stop,), daemon=True).start()
    return samples, counters, stop


def test_the_reader_follows_the_engine(adapter: Elm327Simulator) -> None:
    samples, counters, stop = reading(adapter)
    try:
        # Engine off: the adapter says NO DATA, and no sample is made.
        wait_for(lambda: counters.snapshot().get("obd_no_data", 0) >= 1, what="NO DATA")
        assert samples == []
        assert adapter.requests[:6] == ["ATZ", "ATE0", "ATL0", "ATS0", "ATH0", "ATSP0"]
        adapter.engine.set(running=True, fuel_rate_l_per_h=12.5, speed_kmh=60)
        wait_for(lambda: len(samples) >= 3, what="three readings")
        first, last = samples[0], samples[-1]
        assert first.fuel_rate_l_per_h == 12.5
        assert first.fuel_level_pct is not None and 0 < first.fuel_level_pct <= 100
        assert first.odometer_km is not None and last.odometer_km is not None
        assert last.odometer_km >= first.odometer_km >= 123_456.7
        assert counters.snapshot().get("obd_bad_answers", 0) == 0
        # The adapter talks nonsense: counted, no sample, the reader goes on.
        adapter.garbage = b"\x00\xffBUFFER FULL 41"
        before = len(samples)
        wait_for(lambda: counters.snapshot().get("obd_bad_answers", 0) >= 3, what="bad answers")
        assert len(samples) <= before + 1
        adapter.garbage = None
        wait_for(lambda: len(samples) >= before + 3, what="readings again")
    finally:
        stop.set()


def test_an_agent_with_an_adapter_gets_its_fuel_stored(
    tmp_path: Path, mosquitto: Mosquitto, store: Store, adapter: Elm327Simulator
) -> None:
    adapter.engine.set(running=True, fuel_rate_l_per_h=8.0, speed_kmh=50)
    agent = Agent(
        AgentConfig(
            vehicle="vexin-01",
            state_dir=tmp_path / "agent",
            broker=BrokerConfig(url=mosquitto.url),
            obd=ObdPortConfig(port=adapter.path, interval_s=0.5),
            outbox=OutboxConfig(confirm_timeout_s=3, confirm_timeout_max_s=6),
        )
    )
    with running_ingest(store, mosquitto.url, "ingest-obd"):
        agent.start()
        try:

            def stored() -> list[sa.Row[tuple[object, ...]]]:
                with store.engine.connect() as conn:
                    return list(conn.execute(sa.select(obd_samples)))

            rows = wait_for(lambda: len(stored()) >= 3 and stored(), what="fuel stored")
        finally:
            agent.stop()
    assert {r.vehicle for r in rows} == {"vexin-01"}
    assert {r.fuel_rate_l_per_h for r in rows} == {8.0}
    assert all(r._mapping["t"] <= datetime.now(UTC) for r in rows)
