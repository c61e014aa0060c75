"""No sequence of fixes makes the detector or the tracker raise, and what they keep stays
consistent: random fixes around real stops, with gaps, repeats, fixes out of order, jumps
across the map and across midnight (hypothesis)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ingest.itinerary import Itinerary, Stop
from ingest.local_days import local_date
from ingest.pipeline import Ingestor
from ingest.punctuality.classification import reconciled_stays
from ingest.punctuality.config import DetectorSettings, PunctualitySettings
from ingest.punctuality.detector import (
    ArrivalDetector,
    DetectorConfig,
    Fix,
    StopArrival,
    StopEvent,
)
from ingest.punctuality.storage import PunctualityStore
from ingest.punctuality.tracker import PunctualityTracker
from ingest.store import Store
from ingest.validation import Limits
from protocol import GpsBatch, GpsSample, encode, topic_for
from protocol.models import Batch
from tests.ingest.punctuality.tracks import offset

START = datetime(2026, 11, 16, 21, 0, tzinfo=UTC)  # 22:00 local: runs cross midnight
PLACES = ("gisors", "vesly", "hacqueville")
# A few dwells' worth of seconds: short enough that a sequence of steps makes stays.
DWELL_S = 30.0
Raw = list[tuple[float, str, float, float, float]]


@st.composite
def steps(draw: st.DrawFn) -> Raw:
    """(seconds since START, place, metres east, metres north, speed) per fix."""
    out: list[tuple[float, str, float, float, float]] = []
    t = 0.0
    for _ in range(draw(st.integers(1, 10))):
        place = draw(st.sampled_from(PLACES))
        kind = draw(
            st.sampled_from(["rest", "rest", "drive", "jump", "gap", "gap", "repeat", "back"])
        )
        count = draw(st.integers(1, 60))
        if kind == "gap":
            # Up to a night: the receiver off, or the data of a drive cut short.
            t += draw(st.sampled_from([25.0, 300.0, 4000.0, 40_000.0, 40_000.0]))
            continue
        if kind == "back" and out:
            t = max(0.0, t - draw(st.sampled_from([5.0, 40.0, 3600.0])))
        east, north = draw(st.floats(-400, 400)), draw(st.floats(-400, 400))
        for i in range(count):
            if kind == "repeat" and out:
                out.append(out[-1])
                continue
            moving = kind in ("drive", "jump")
            speed = draw(st.floats(2, 30)) if moving else draw(st.floats(0, 0.5))
            shift = 15.0 * i if moving else 0.0
            out.append((t, place, east + shift, north, speed))
            t += draw(st.sampled_from([1.0, 1.0, 1.0, 5.0]))
    return out


def _fixes(
    itinerary: Itinerary, raw: Sequence[tuple[float, str, float, float, float]]
) -> list[Fix]:
    stops = {s.id: s for s in itinerary.stops}
    fixes = []
    for t, place, east, north, speed in raw:
        stop = stops[place]
        lat, lon = offset(stop.lat, stop.lon, east, north)
        fixes.append(Fix(START + timedelta(seconds=t), lat, lon, speed, 1.0))
    return fixes


def _check_events(events: Sequence[StopEvent]) -> None:
    at: StopArrival | None = None
    for e in events:
        if isinstance(e, StopArrival):
            assert at is None, f"arrival at {e.stop} while at {at.stop if at else ''}"
            if e.estimated:
                assert e.earliest is not None and e.latest is not None
                assert e.earliest <= e.t <= e.latest
            at = e
        else:
            assert at is not None and at.stop == e.stop
            assert e.t >= at.t
            at = None


@settings(max_examples=150, deadline=None)
@given(raw=steps(), window=st.sampled_from([0.0, 30.0]))
def test_the_detector_never_raises_and_alternates(
    itinerary: Itinerary, raw: Raw, window: float
) -> None:
    config = DetectorConfig(dwell_s=DWELL_S, reorder_window_s=window)
    detector = ArrivalDetector("vexin-01", itinerary.stops, config)
    events = detector.feed_many(_fixes(itinerary, raw)) + detector.flush()
    _check_events(events)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    raw=steps(),
    batch=st.integers(1, 60),
    shuffle=st.randoms(use_true_random=False),
    restart=st.one_of(st.none(), st.integers(0, 30)),
)
def test_the_tracker_never_raises_and_stays_consistent(
    *,
    itinerary: Itinerary,
    tmp_path: Path,
    raw: Raw,
    batch: int,
    shuffle: random.Random,
    restart: int | None,
) -> None:
    url = f"sqlite:///{tmp_path}/{shuffle.getrandbits(64)}.sqlite"
    store = Store.open(url)
    try:
        store.load_fleet(itinerary)
        _run(store, itinerary, _fixes(itinerary, raw), size=batch, rng=shuffle, restart=restart)
    finally:
        store.close()


def _run(
    store: Store,
    itinerary: Itinerary,
    fixes: list[Fix],
    *,
    size: int,
    rng: random.Random,
    restart: int | None,
    in_order: bool = False,
) -> None:
    """Feed the fixes in batches of ``size`` (one of them late); the ingest restarts before
    batch ``restart``, if given."""
    settings_ = PunctualitySettings(detector=DetectorSettings(dwell_s=DWELL_S))
    first_day = local_date(START, itinerary.zone)

    def tracker() -> PunctualityTracker:
        t = PunctualityTracker(store, itinerary, settings_)
        t.start(first_day, past_days=1)
        return t

    # The ingest logs an observer's failure and goes on: record them to see them.
    failures: list[str] = []

    def observed(live: PunctualityTracker) -> Ingestor:
        def observer(batches: Sequence[Batch]) -> None:
            try:
                live(batches)
            except Exception as exc:
                failures.append(repr(exc))

        return Ingestor(store, Limits(max_age=timedelta(days=3650)), observers=[observer])

    ingestor = observed(tracker())
    samples = [
        GpsSample(t=f.t, lat=f.lat, lon=f.lon, speed_mps=f.speed_mps, fix_mode=3, hdop=f.hdop)
        for f in fixes
    ]
    batches = [samples[i : i + size] for i in range(0, len(samples), size)]
    # Some batches arrive late, as an outbox catching up would deliver them.
    if len(batches) > 2 and not in_order:
        late = rng.randrange(len(batches))
        batches.append(batches.pop(late))
    newest = max((f.t for f in fixes), default=START) + timedelta(minutes=1)
    for seq, part in enumerate(batches):
        if restart is not None and seq == min(restart, len(batches) - 1):
            ingestor = observed(tracker())
        message = GpsBatch(vehicle="vexin-01", seq=seq, samples=part)
        outcome = ingestor.handle(topic_for("vexin-01", "gps"), encode(message), newest)
        assert outcome.status in ("stored", "duplicate"), outcome.reason
    assert failures == []
    _check_store(store, first_day)


def _check_store(store: Store, first_day: date) -> None:
    db = PunctualityStore(store)
    last_day = first_day + timedelta(days=2)
    for day in (first_day, first_day + timedelta(days=1), last_day):
        events = db.events("vexin-01", day)
        stays, _ = reconciled_stays(events)
        for s in stays:
            assert s.departure is None or s.departure >= s.arrival
    for row in db.visits_between(first_day, last_day, "vexin-01"):
        f = row.facts
        if f.detected_arrival is not None and f.detected_departure is not None:
            assert f.detected_departure >= f.detected_arrival
        if f.detected_arrival_earliest is not None:
            assert f.detected_arrival is not None and f.detected_arrival_latest is not None
            assert f.detected_arrival_earliest <= f.detected_arrival <= f.detected_arrival_latest
    for u in db.unscheduled(first_day, last_day, "vexin-01"):
        assert u.departure is None or u.departure >= u.arrival


def test_stops_used_here_exist(itinerary: Itinerary) -> None:
    assert set(PLACES) <= {s.id for s in itinerary.stops}
    assert isinstance(itinerary.stops[0], Stop)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# The case seen in service: a drive cut inside Vesly's zone, the ingest restarted, and the
# next morning's live data from the depot.
@example(
    replayed=[(0.0, "gisors", 0.0, 0.0, 0.1)],
    live=[(0.0, "gisors", 0.0, 0.0, 0.1)],
    later_s=40_000.0,
    restart=True,
    cut_at="vesly",
    live_at="gisors",
)
@given(
    replayed=steps(),
    live=steps(),
    later_s=st.sampled_from([60.0, 7200.0, 40_000.0, 90_000.0]),
    restart=st.booleans(),
    cut_at=st.sampled_from(PLACES),
    live_at=st.sampled_from(PLACES),
)
def test_an_interrupted_drive_then_live_data_never_stop_the_tracker(
    *,
    itinerary: Itinerary,
    tmp_path: Path,
    replayed: Raw,
    live: Raw,
    later_s: float,
    restart: bool,
    cut_at: str,
    live_at: str,
) -> None:
    """A drive's data (a replay, or cut short) that ends at rest in ``cut_at``'s zone,
    then live data from ``later_s`` after it that begins at rest in ``live_at``'s, the
    ingest restarting in between or not."""
    cut = max((t for t, *_ in replayed), default=0.0) + 1.0
    replayed = replayed + [(cut + i, cut_at, 5.0, 5.0, 0.1) for i in range(60)]
    start = cut + 60.0 + later_s
    opening = [(start + i, live_at, -5.0, 5.0, 0.1) for i in range(60)]
    raw = [*replayed, *opening]
    raw += [(start + 60.0 + t, place, east, north, v) for t, place, east, north, v in live]
    url = f"sqlite:///{tmp_path}/{random.getrandbits(64)}.sqlite"
    store = Store.open(url)
    try:
        store.load_fleet(itinerary)
        fixes = _fixes(itinerary, raw)
        size = max(1, len(replayed))
        _run(
            store,
            itinerary,
            fixes,
            size=size,
            rng=random.Random(0),
            restart=1 if restart else None,
            in_order=True,
        )
    finally:
        store.close()
