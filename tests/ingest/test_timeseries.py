"""Every accepted sample and every derived metric reaches a real time-series server, even
across its outage."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest

from ingest.domain import IngestDomain
from ingest.footprint import storage as footprint_storage
from ingest.itinerary import Itinerary
from ingest.pipeline import Ingestor
from ingest.points import lines_for, lines_of
from ingest.punctuality.storage import PunctualityStore
from ingest.punctuality.tracker import PunctualityTracker
from ingest.settings import DomainSettings
from ingest.store import Store
from ingest.timeseries import InfluxSettings, TimeseriesForwarder
from ingest.validation import Limits
from protocol import FridgeBatch, FridgeSample, GpsBatch, GpsSample, encode, topic_for
from protocol.clock import ManualClock
from tests.ingest.punctuality.test_tracker import MONDAY, RECEIVED, vexin_monday
from tests.support.victoria import VictoriaMetrics
from tests.support.wait import wait_for


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    server = VictoriaMetrics(tmp_path / "victoria").start()
    yield server
    server.stop()


@pytest.fixture
def ts_store(tmp_path: Path, itinerary: Itinerary) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path / 'cloud.sqlite'}", points=lines_of)
    store.load_fleet(itinerary)
    yield store
    store.close()


def gps_batch(seq: int, t0: datetime, n: int = 5) -> GpsBatch:
    return GpsBatch(
        vehicle="vexin-01",
        seq=seq,
        samples=[
            GpsSample(
                t=t0 + timedelta(seconds=i),
                lat=49.0 + seq * 0.001 + i * 1e-5,
                lon=1.5,
                speed_mps=10.0,
                fix_mode=3,
            )
            for i in range(n)
        ],
    )


def test_line_protocol_layout() -> None:
    t = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    (line,) = lines_for(
        FridgeBatch(
            vehicle="caux-01", seq=0, samples=[FridgeSample(t=t, temp_c=4.5, door_open=True)]
        )
    )
    assert line == f"fridge,vehicle=caux-01 door_open=true,temp_c=4.5 {int(t.timestamp() * 1000)}"


def test_points_survive_an_outage_of_the_time_series_server(
    ts_store: Store, victoria: VictoriaMetrics
) -> None:
    ingestor = Ingestor(ts_store)
    forwarder = TimeseriesForwarder(ts_store, InfluxSettings(url=victoria.url, bucket="telemetry"))
    forwarder.start()
    now = datetime.now(UTC)
    t0 = now - timedelta(minutes=30)
    topic = topic_for("vexin-01", "gps")
    try:
        for seq in range(10):
            ingestor.handle(topic, encode(gps_batch(seq, t0 + timedelta(minutes=seq))), now)
        wait_for(lambda: ts_store.count_pending_points() == 0, what="first points forwarded")

        victoria.stop()
        for seq in range(10, 30):
            ingestor.handle(topic, encode(gps_batch(seq, t0 + timedelta(minutes=seq))), now)
        # A duplicate while the server is down adds no point.
        ingestor.handle(topic, encode(gps_batch(12, t0 + timedelta(minutes=12))), now)
        wait_for(lambda: forwarder.failures > 0, what="a failed write while the server is down")
        assert ts_store.count_pending_points() == 20 * 5

        victoria.start()
        wait_for(lambda: ts_store.count_pending_points() == 0, timeout=60, what="backlog sent")
    finally:
        forwarder.stop()

    series = victoria.export('{__name__="gps_lat",vehicle="vexin-01"}')
    assert len(series) == 1
    timestamps = series[0]["timestamps"]
    assert isinstance(timestamps, list)
    expected = {
        int((t0 + timedelta(minutes=seq, seconds=i)).timestamp() * 1000)
        for seq in range(30)
        for i in range(5)
    }
    assert set(timestamps) == expected
    assert len(timestamps) == 150  # nothing written twice


def test_derived_metrics_reach_the_server_after_its_outage(
    ts_store: Store, itinerary: Itinerary, victoria: VictoriaMetrics
) -> None:
    """A bus's Monday: its visits and its footprint day are derived while the server is
    down, wait in the outbox, and are read back from the server once it is up."""
    tracker = PunctualityTracker(ts_store, itinerary)
    tracker.start(MONDAY, past_days=1)
    domain = IngestDomain(ts_store, itinerary, DomainSettings(), ManualClock(RECEIVED))
    ingestor = Ingestor(
        ts_store, Limits(max_age=timedelta(days=3650)), observers=[tracker, *domain.observers]
    )
    forwarder = TimeseriesForwarder(ts_store, InfluxSettings(url=victoria.url, bucket="telemetry"))
    victoria.stop()
    forwarder.start()
    try:
        for batch in vexin_monday(itinerary):
            ingestor.handle(topic_for(batch.vehicle, "gps"), encode(batch), RECEIVED)
        domain.catch_up()
        wait_for(lambda: forwarder.failures > 0, what="a failed write while the server is down")
        waiting = [line for _, line in ts_store.pending_points(100_000)]
        assert any(line.startswith("footprint_day,") for line in waiting)
        assert any(line.startswith("visit,") for line in waiting)

        victoria.start()
        wait_for(lambda: ts_store.count_pending_points() == 0, timeout=60, what="backlog sent")
    finally:
        forwarder.stop()

    (day,) = footprint_storage.days(ts_store.engine, "vexin-01", MONDAY, MONDAY)
    (series,) = victoria.export('{__name__="footprint_day_distance_km",vehicle="vexin-01"}')
    labels = series["metric"]
    assert isinstance(labels, dict)
    assert (labels["carrier"], labels["factor_set"]) == ("diesel", "base-empreinte")
    local_midnight = datetime(2026, 11, 15, 23, 0, tzinfo=UTC)
    assert series["timestamps"] == [int(local_midnight.timestamp() * 1000)]
    assert series["values"] == [pytest.approx(day.distance_km)]
    assert day.distance_km > 10

    visits = PunctualityStore(ts_store).visits_between(MONDAY, MONDAY, "vexin-01")
    hacqueville = next(v.facts for v in visits if v.stop == "hacqueville")
    assert hacqueville.detected_arrival is not None
    (delays,) = victoria.export('{__name__="visit_delay_s",vehicle="vexin-01",stop="hacqueville"}')
    # Written again at each classification of the day: at one time, with one value.
    assert set(cast(list[int], delays["timestamps"])) == {
        int(hacqueville.scheduled_arrival.timestamp() * 1000)
    }
    expected = (hacqueville.detected_arrival - hacqueville.scheduled_arrival).total_seconds()
    assert cast(list[float], delays["values"]) == [pytest.approx(expected)] * len(
        cast(list[float], delays["values"])
    )
