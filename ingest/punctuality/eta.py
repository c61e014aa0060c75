"""Expected arrival times at the next stops: the ETA model, pure (no clock, no database).

``upcoming_etas`` is the plain estimate: the great-circle distance times a road-detour
factor at one speed, the first leg from "now". It serves as a baseline.

``predict_arrivals`` is what the product publishes. A bus at a standstill does not leave
before the visit it is holding ends, nor, with time to spare, before it must to arrive as
it usually does (its learned habits per stop and weekday, else the timetable): at the depot
in the morning or at lunch the prediction is the timetable as this bus keeps it. Driving
time is learned from moving time only (``moving_seconds``: standstills of more than two
minutes on the way are taken out), per leg and in general. Each prediction has a state
(early, on time, late, waiting to leave, not confirmed, doubtful), an interval and its
source, so a visit the bus can no longer make is flagged as soon as the arithmetic says so.
"""

from __future__ import annotations

import functools
import itertools
import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal, ParamSpec

from ingest.geo import haversine_m
from ingest.itinerary import Stop
from ingest.punctuality.classification import PunctualityThresholds, Stay
from ingest.punctuality.detector import Fix
from ingest.punctuality.schedule import Visit

# Rural roads in the Vexin and the Pays de Caux run about a third longer than the crow flies.
DEFAULT_DETOUR_FACTOR = 1.3
# A "trip" between two stays longer than this was not a drive from one stop to the next
# (a night at the depot, a breakdown): it says nothing about the road.
MAX_LEG_DURATION = timedelta(hours=3)


@dataclass(frozen=True)
class Eta:
    visit: Visit
    road_distance_m: float
    expected_arrival: datetime

    @property
    def expected_delay(self) -> timedelta:
        return self.expected_arrival - self.visit.scheduled_arrival


def road_distance_m(
    lat: float, lon: float, stop: Stop, detour_factor: float = DEFAULT_DETOUR_FACTOR
) -> float:
    if not (1.0 <= detour_factor < math.inf):
        raise ValueError(f"detour factor {detour_factor} must be at least 1")
    return haversine_m(lat, lon, stop.lat, stop.lon) * detour_factor


def travel_time(
    lat: float,
    lon: float,
    stop: Stop,
    speed_mps: float,
    detour_factor: float = DEFAULT_DETOUR_FACTOR,
) -> timedelta:
    """Time to drive from (lat, lon) to ``stop`` at ``speed_mps`` on the road estimate."""
    if not (0.0 < speed_mps < math.inf):
        raise ValueError(f"speed {speed_mps} m/s must be positive and finite")
    return timedelta(seconds=road_distance_m(lat, lon, stop, detour_factor) / speed_mps)


def upcoming_etas(
    vehicle: str,
    lat: float,
    lon: float,
    at: datetime,
    *,
    visits: Sequence[Visit],
    stops: Mapping[str, Stop],
    speed_mps: float,
    detour_factor: float = DEFAULT_DETOUR_FACTOR,
    done: Collection[str] = (),
    limit: int = 3,
    leg_speed_mps: Mapping[tuple[str, str], float] | None = None,
    from_stop: str | None = None,
) -> list[Eta]:
    """ETAs for the vehicle's next ``limit`` visits not cancelled, not ``done`` (visit ids
    already arrived at) and not over (scheduled departure after ``at``).

    A leg found in ``leg_speed_mps`` (from stop, to stop) is driven at that speed, others at
    ``speed_mps``; the first leg is from ``from_stop``, the stop the vehicle left last."""
    if at.tzinfo is None:
        raise ValueError("at has no time zone")
    if limit < 1:
        raise ValueError("limit must be at least 1")
    upcoming = sorted(
        (
            v
            for v in visits
            if v.vehicle == vehicle
            and not v.cancelled
            and v.id not in done
            and v.scheduled_departure > at
        ),
        key=lambda v: v.scheduled_arrival,
    )[:limit]
    etas: list[Eta] = []
    here, leave, previous = (lat, lon), at, from_stop
    known = leg_speed_mps or {}
    for visit in upcoming:
        try:
            stop = stops[visit.stop]
        except KeyError:
            raise ValueError(f"visit {visit.id}: unknown stop {visit.stop!r}") from None
        speed = known.get((previous, visit.stop), speed_mps) if previous else speed_mps
        distance = road_distance_m(here[0], here[1], stop, detour_factor)
        arrival = leave + travel_time(here[0], here[1], stop, speed, detour_factor)
        etas.append(Eta(visit, distance, arrival))
        here, previous = (stop.lat, stop.lon), visit.stop
        leave = max(arrival, visit.scheduled_departure)
    return etas


_P = ParamSpec("_P")

# --- predictions the coordinators and patients can trust ---------------------------------

EtaState = Literal["early", "on_time", "late", "waiting_to_leave", "not_confirmed", "doubtful"]
EtaSource = Literal["position", "history", "timetable"]

# A bus at a standstill longer than this on the way was not driving (a break, a garage, a
# queue of errands): such time is taken out of the leg's learned driving time.
LONG_STOP = timedelta(minutes=2)
# Below this the bus is at a standstill (GPS speed noise of a parked receiver stays under it).
STILL_MPS = 1.0
# Starting, crossing the villages at both ends and parking cost about this, whatever the leg.
OVERHEAD_S = 60.0
# A bus arriving late still holds consultations this long before it leaves for the next stop.
MIN_DWELL = timedelta(minutes=30)
# Parked this long off every stop of the itinerary, the bus is not merely held at a light.
STOPPED_AWAY = timedelta(minutes=5)
# Driving this much farther from the stop over ``HEADING_WINDOW`` is going the wrong way.
WRONG_WAY_M = 500.0
HEADING_WINDOW = timedelta(minutes=3)
# The fastest a leg is ever driven, against its learned time (empty roads, a hurried crew).
FASTEST = 0.8
# How far a drive's time spreads around the estimate (below, above), and at least how much.
DRIVE_SPREAD = (0.15, 0.35)
MIN_SPREAD = timedelta(minutes=1)
# History needed before a learned figure is used instead of the general one.
MIN_SAMPLES = 3


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[rank]


def moving_seconds(fixes: Sequence[Fix], start: datetime, end: datetime) -> float:
    """Seconds of ``[start, end]`` the vehicle was driving: standstills longer than
    ``LONG_STOP`` (judged from the fixes in that span, in time order) are taken out; a gap
    without fixes counts as driving (a tunnel, a GPS outage)."""
    total = (end - start).total_seconds()
    if total <= 0:
        return 0.0
    stopped = 0.0
    still_from: Fix | None = None
    last: Fix | None = None
    for fix in fixes:
        if not start <= fix.t <= end:
            continue
        moving = _fix_speed(last, fix) > STILL_MPS
        if moving:
            if still_from is not None and last is not None:
                stopped += _long(still_from.t, last.t)
            still_from = None
        elif still_from is None:
            still_from = fix
        last = fix
    if still_from is not None and last is not None:
        stopped += _long(still_from.t, last.t)
    return max(0.0, total - stopped)


def _long(first: datetime, last: datetime) -> float:
    seconds = (last - first).total_seconds()
    return seconds if seconds > LONG_STOP.total_seconds() else 0.0


def _fix_speed(previous: Fix | None, fix: Fix) -> float:
    if fix.speed_mps is not None:
        return fix.speed_mps
    if previous is None:
        return 0.0
    dt = (fix.t - previous.t).total_seconds()
    if dt <= 0:
        return 0.0
    return haversine_m(previous.lat, previous.lon, fix.lat, fix.lon) / dt


@dataclass(frozen=True)
class LegTrip:
    """One drive from a stop to the next: when it left, when it arrived, and how long of
    that it was actually driving."""

    origin: str
    destination: str
    departed: datetime
    arrived: datetime
    moving_s: float


def leg_trips(
    stays: Iterable[Stay], fixes_between: Callable[[datetime, datetime], Sequence[Fix]]
) -> list[LegTrip]:
    """The trips between consecutive stays of one vehicle, with their moving time from
    ``fixes_between(departed, arrived)``."""
    ordered = sorted(stays, key=lambda s: s.arrival)
    vehicles = {s.vehicle for s in ordered}
    if len(vehicles) > 1:
        raise ValueError(f"stays of several vehicles: {', '.join(sorted(vehicles))}")
    trips = []
    for before, after in itertools.pairwise(ordered):
        if before.departure is None or before.stop == after.stop:
            continue
        if not timedelta(0) < after.arrival - before.departure <= MAX_LEG_DURATION:
            continue
        moving = moving_seconds(
            fixes_between(before.departure, after.arrival), before.departure, after.arrival
        )
        if moving > 0:
            trips.append(LegTrip(before.stop, after.stop, before.departure, after.arrival, moving))
    return trips


@dataclass(frozen=True)
class DrivingModel:
    """How long this vehicle takes to drive somewhere: ``OVERHEAD_S`` plus the straight-line
    distance at ``crow_speed_mps``, times the leg's own factor where the vehicle drove it
    before (its median moving time against the general estimate)."""

    crow_speed_mps: float
    leg_factor: Mapping[tuple[str, str], float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (0.0 < self.crow_speed_mps < math.inf):
            raise ValueError(f"speed {self.crow_speed_mps} m/s must be positive and finite")

    @classmethod
    def default(cls, speed_kmh: float, detour_factor: float) -> DrivingModel:
        if not (1.0 <= detour_factor < math.inf):
            raise ValueError(f"detour factor {detour_factor} must be at least 1")
        return cls(speed_kmh / 3.6 / detour_factor)

    def general_s(self, crow_m: float, moving: bool = False) -> float:
        if crow_m <= 0:
            return 0.0
        # A bus already under way has done its starting; parking is still to come.
        overhead = OVERHEAD_S / 2 if moving else OVERHEAD_S
        return overhead + crow_m / self.crow_speed_mps

    def drive_s(self, leg: tuple[str | None, str], crow_m: float, moving: bool = False) -> float:
        origin, destination = leg
        factor = self.leg_factor.get((origin, destination), 1.0) if origin else 1.0
        return self.general_s(crow_m, moving) * factor


def learn_driving(
    trips: Iterable[LegTrip], stops: Mapping[str, Stop], default: DrivingModel
) -> DrivingModel:
    """The vehicle's straight-line driving speed (median over its trips, moving time only)
    and each leg's factor, from at least ``MIN_SAMPLES`` trips; the default otherwise."""
    speeds: list[float] = []
    per_leg: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for trip in trips:
        if trip.origin not in stops or trip.destination not in stops:
            continue
        a, b = stops[trip.origin], stops[trip.destination]
        crow = haversine_m(a.lat, a.lon, b.lat, b.lon)
        if crow <= 0:
            continue
        speeds.append(crow / max(trip.moving_s - OVERHEAD_S, OVERHEAD_S))
        per_leg[(trip.origin, trip.destination)].append((crow, trip.moving_s))
    model = default
    if len(speeds) >= MIN_SAMPLES:
        model = DrivingModel(_median(speeds))
    factors = {
        leg: _median([moving / model.general_s(crow) for crow, moving in samples])
        for leg, samples in per_leg.items()
        if samples
    }
    return DrivingModel(model.crow_speed_mps, factors)


@dataclass(frozen=True)
class Habit:
    """How the bus keeps one slot of its timetable: arrival − scheduled arrival, 10th,
    50th and 90th percentiles (seconds), over ``samples`` held visits."""

    arrival_p10_s: float
    arrival_p50_s: float
    arrival_p90_s: float
    samples: int


@dataclass(frozen=True)
class HeldVisit:
    """A past visit and when the bus arrived: for learning habits."""

    visit: Visit
    arrival: datetime


@dataclass(frozen=True)
class Habits:
    """Habits per (stop, weekday) where there is history enough, else per stop."""

    by_slot: Mapping[tuple[str, int], Habit] = field(default_factory=dict)
    by_stop: Mapping[str, Habit] = field(default_factory=dict)

    def of(self, visit: Visit) -> Habit | None:
        return self.by_slot.get((visit.stop, visit.day.isoweekday())) or self.by_stop.get(
            visit.stop
        )


def _habit(held: Sequence[HeldVisit]) -> Habit:
    arrivals = [(h.arrival - h.visit.scheduled_arrival).total_seconds() for h in held]
    return Habit(_quantile(arrivals, 0.1), _median(arrivals), _quantile(arrivals, 0.9), len(held))


def learn_habits(held: Iterable[HeldVisit]) -> Habits:
    """Habits of one vehicle from its held visits (at least ``MIN_SAMPLES`` per key)."""
    by_slot: dict[tuple[str, int], list[HeldVisit]] = defaultdict(list)
    by_stop: dict[str, list[HeldVisit]] = defaultdict(list)
    for h in held:
        by_slot[(h.visit.stop, h.visit.day.isoweekday())].append(h)
        by_stop[h.visit.stop].append(h)
    return Habits(
        {k: _habit(v) for k, v in by_slot.items() if len(v) >= MIN_SAMPLES},
        {k: _habit(v) for k, v in by_stop.items() if len(v) >= MIN_SAMPLES},
    )


@dataclass(frozen=True)
class Whereabouts:
    """Where the vehicle is at ``t`` and what it is doing, from its latest fixes."""

    t: datetime
    lat: float
    lon: float
    moving: bool
    still_since: datetime | None
    at_stop: str | None  # the stop it has arrived at and not left
    last_stop: str | None  # the stop it left last
    recent: tuple[Fix, ...] = ()  # the last few minutes of fixes, for its heading

    def __post_init__(self) -> None:
        if self.t.tzinfo is None:
            raise ValueError("the whereabouts' time has no time zone")
        if not (-90.0 <= self.lat <= 90.0 and -180.0 <= self.lon <= 180.0):
            raise ValueError(f"position ({self.lat}, {self.lon}) is not on the Earth")

    def distance_m(self, stop: Stop) -> float:
        return haversine_m(self.lat, self.lon, stop.lat, stop.lon)

    def nearing_m(self, stop: Stop) -> float | None:
        """How much closer to ``stop`` (straight line) it came over ``HEADING_WINDOW``."""
        then = self.t - HEADING_WINDOW
        earlier = [f for f in self.recent if f.t <= then]
        if not earlier:
            return None
        past = earlier[-1]
        return haversine_m(past.lat, past.lon, stop.lat, stop.lon) - self.distance_m(stop)


def whereabouts(
    fixes: Sequence[Fix], *, at_stop: str | None = None, last_stop: str | None = None
) -> Whereabouts:
    """The vehicle's whereabouts from its latest fixes (in time order, a few minutes' worth
    or more): moving if the newest fixes say so, else at a standstill since the first of
    the fixes it has not moved from."""
    if not fixes:
        raise ValueError("no fix to tell where the vehicle is")
    latest = fixes[-1]
    previous = fixes[-2] if len(fixes) > 1 else None
    moving = _fix_speed(previous, latest) > STILL_MPS
    still_since = None
    if not moving:
        still_since = latest.t
        for fix in reversed(fixes):
            if haversine_m(fix.lat, fix.lon, latest.lat, latest.lon) > 50.0 or (
                fix.speed_mps is not None and fix.speed_mps > STILL_MPS
            ):
                break
            still_since = fix.t
    window = latest.t - HEADING_WINDOW - timedelta(minutes=1)
    recent = tuple(f for f in fixes if f.t >= window)
    return Whereabouts(
        latest.t, latest.lat, latest.lon, moving, still_since, at_stop, last_stop, recent
    )


@dataclass(frozen=True)
class Prediction:
    """The expected arrival at one visit, its state and an uncertainty interval
    (``latest`` None: no upper bound can be given, the bus has not set off)."""

    visit: Visit
    rank: int
    expected_arrival: datetime
    earliest: datetime
    latest: datetime | None
    state: EtaState
    source: EtaSource
    road_distance_m: float

    @property
    def expected_delay(self) -> timedelta:
        return self.expected_arrival - self.visit.scheduled_arrival


def _delay_state(delay: timedelta, thresholds: PunctualityThresholds) -> EtaState:
    if delay < thresholds.on_time_from:
        return "early"
    if delay > thresholds.on_time_until:
        return "late"
    return "on_time"


def _within_calendar(
    predict: Callable[_P, list[Prediction]],
) -> Callable[_P, list[Prediction]]:
    """A ``ValueError`` naming the problem where times so close to the end of the calendar
    would put an arrival beyond it."""

    @functools.wraps(predict)
    def checked(*args: _P.args, **kwargs: _P.kwargs) -> list[Prediction]:
        try:
            return predict(*args, **kwargs)
        except OverflowError:
            raise ValueError("the arrivals predicted fall beyond the end of the calendar") from None

    return checked


@_within_calendar
def predict_arrivals(
    where: Whereabouts,
    *,
    visits: Sequence[Visit],
    stops: Mapping[str, Stop],
    driving: DrivingModel,
    habits: Habits | None = None,
    thresholds: PunctualityThresholds | None = None,
    made: Collection[str] = (),
    current: Visit | None = None,
    limit: int = 3,
    detour_factor: float = DEFAULT_DETOUR_FACTOR,
) -> list[Prediction]:
    """Predictions for the next ``limit`` visits of ``visits`` (one vehicle's, not
    cancelled) that are not ``made`` (arrived at) and whose window has not closed.

    A bus at a standstill does not leave before ``current``'s scheduled departure (the
    visit it is holding) and, with time to spare, sets off to arrive as it usually does
    (its habits, else the timetable): a parked bus is never sent off "now". Driving time
    comes from ``driving``. The first visit turns ``not_confirmed`` when the bus stands
    off every stop after it should have set off, or drives away from it, and any visit
    ``doubtful`` once even the fastest drive from where the bus is would miss its window.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    bands = thresholds or PunctualityThresholds()
    now = where.t
    latest_made = max((v.scheduled_arrival for v in visits if v.id in made), default=None)
    upcoming = sorted(
        (
            v
            for v in visits
            if not v.cancelled
            and v.id not in made
            and v.scheduled_departure + bands.match_after_departure > now
        ),
        key=lambda v: (v.scheduled_arrival, v.id),
    )[:limit]
    predictions: list[Prediction] = []
    here = (where.lat, where.lon)
    origin = where.at_stop or where.last_stop
    # When the bus can set off from ``here``: earliest and expected; None = it is driving.
    ready: datetime | None = None
    if not where.moving:
        ready = now
        if current is not None and current.scheduled_departure > now:
            ready = current.scheduled_departure
    for rank, visit in enumerate(upcoming, start=1):
        try:
            stop = stops[visit.stop]
        except KeyError:
            raise ValueError(f"visit {visit.id}: unknown stop {visit.stop!r}") from None
        closes = visit.scheduled_departure + bands.match_after_departure
        crow = haversine_m(here[0], here[1], stop.lat, stop.lon)
        driving_now = ready is None
        drive = timedelta(seconds=driving.drive_s((origin, visit.stop), crow, driving_now))
        low = max(MIN_SPREAD, drive * DRIVE_SPREAD[0])
        high = max(MIN_SPREAD, drive * DRIVE_SPREAD[1])
        direct_crow = where.distance_m(stop)
        fastest = now + FASTEST * timedelta(seconds=driving.general_s(direct_crow, where.moving))
        habit = habits.of(visit) if habits else None
        if habit is not None:
            usual = visit.scheduled_arrival + timedelta(seconds=habit.arrival_p50_s)
            usual_low = visit.scheduled_arrival + timedelta(seconds=habit.arrival_p10_s)
            usual_high = visit.scheduled_arrival + timedelta(seconds=habit.arrival_p90_s)
        else:
            usual = visit.scheduled_arrival
            usual_low = visit.scheduled_arrival + bands.on_time_from
            usual_high = visit.scheduled_arrival + bands.on_time_until
        latest: datetime | None
        if ready is None:
            # Under way: the bus arrives when it gets there; it does not wait on the road.
            expected, earliest, latest = now + drive, now + drive - low, now + drive + high
            source: EtaSource = "position"
        else:
            by_road = ready + drive
            if by_road >= usual:
                expected, earliest, source = by_road, max(now, ready) + drive - low, "position"
                # It should be on its way already: when it sets off, no one can tell.
                latest = by_road + high if ready > now else None
            else:
                expected, earliest, latest = usual, max(usual_low, by_road - low), usual_high
                source = "history" if habit is not None else "timetable"
        # Even a bus that keeps its habits to the second is detected a little off them.
        earliest = min(earliest, expected - MIN_SPREAD)
        if latest is not None:
            latest = max(latest, expected + MIN_SPREAD)
        state: EtaState = _delay_state(expected - visit.scheduled_arrival, bands)
        if rank == 1 and ready is not None and where.at_stop is not None:
            state = "waiting_to_leave"
        elif rank == 1 and ready is not None:
            state = "waiting_to_leave"
            stood = now - (where.still_since or now)
            if stood >= STOPPED_AWAY and now + drive > usual_high:
                state, latest = "not_confirmed", None
        if rank == 1 and where.moving:
            nearing = where.nearing_m(stop)
            if nearing is not None and -nearing > WRONG_WAY_M and direct_crow > stop.radius_m:
                state, latest = "not_confirmed", None
        if latest_made is not None and visit.scheduled_arrival < latest_made:
            # The bus already held a later visit: it went past this one.
            state, latest = "not_confirmed", None
        if fastest > closes:
            state, earliest, latest = "doubtful", max(earliest, fastest), None
            expected = max(expected, fastest)
        predictions.append(
            Prediction(
                visit,
                rank,
                expected,
                earliest,
                latest,
                state,
                source,
                crow * detour_factor,
            )
        )
        if state == "doubtful":
            # A visit it cannot make is no stage of its way to the next ones.
            continue
        dwell_end = max(expected + MIN_DWELL, visit.scheduled_departure)
        here, origin, ready = (stop.lat, stop.lon), visit.stop, dwell_end
    return predictions


def horizon_bucket(seconds: float) -> str:
    """The accuracy bucket of a prediction made ``seconds`` before the arrival."""
    minutes = seconds / 60
    for upper, name in HORIZON_BUCKETS:
        if minutes < upper:
            return name
    return HORIZON_BUCKETS[-1][1]


HORIZON_BUCKETS: tuple[tuple[float, str], ...] = (
    (5, "0-5"),
    (15, "5-15"),
    (30, "15-30"),
    (60, "30-60"),
    (math.inf, ">60"),
)


def with_timetable_where_better(
    prediction: Prediction, now: datetime, timetable_better: Collection[str]
) -> Prediction:
    """The prediction, or the timetable in its stead where the measured accuracy says the
    timetable does better at this horizon (``timetable_better``: bucket names). A doubtful
    or unconfirmed visit keeps its state and bounds: the timetable would hide them."""
    if prediction.state in ("doubtful", "not_confirmed") or prediction.source == "timetable":
        return prediction
    if horizon_bucket((prediction.expected_arrival - now).total_seconds()) not in timetable_better:
        return prediction
    scheduled = prediction.visit.scheduled_arrival
    return replace(
        prediction,
        expected_arrival=scheduled,
        earliest=min(prediction.earliest, scheduled),
        latest=None if prediction.latest is None else max(prediction.latest, scheduled),
        source="timetable",
    )


@dataclass(frozen=True)
class PredictionOutcome:
    """A published prediction of a visit the bus then arrived at."""

    rank: int
    made_at: datetime
    predicted_arrival: datetime
    scheduled_arrival: datetime
    arrival: datetime


@dataclass(frozen=True)
class HorizonAccuracy:
    """Absolute errors (seconds) of the ETA and of the timetable, made ``bucket`` minutes
    before the arrival: median and 90th percentile over ``predictions``."""

    bucket: str
    predictions: int
    eta_p50_s: float | None
    eta_p90_s: float | None
    timetable_p50_s: float | None
    timetable_p90_s: float | None

    @property
    def timetable_better(self) -> bool:
        return (
            self.eta_p50_s is not None
            and self.timetable_p50_s is not None
            and self.timetable_p50_s < self.eta_p50_s
        )


def accuracy_by_horizon(
    outcomes: Iterable[PredictionOutcome], rank: int | None = None
) -> list[HorizonAccuracy]:
    """The accuracy in each horizon bucket (time from the prediction to the arrival), of
    every prediction or only of those made for the ``rank``-th next visit."""
    eta: dict[str, list[float]] = defaultdict(list)
    timetable: dict[str, list[float]] = defaultdict(list)
    for o in outcomes:
        if rank is not None and o.rank != rank:
            continue
        ahead = (o.arrival - o.made_at).total_seconds()
        if ahead < 0:
            continue
        bucket = horizon_bucket(ahead)
        eta[bucket].append(abs((o.predicted_arrival - o.arrival).total_seconds()))
        timetable[bucket].append(abs((o.scheduled_arrival - o.arrival).total_seconds()))
    out = []
    for _, bucket in HORIZON_BUCKETS:
        e, t = eta[bucket], timetable[bucket]
        out.append(
            HorizonAccuracy(
                bucket,
                len(e),
                _quantile(e, 0.5) if e else None,
                _quantile(e, 0.9) if e else None,
                _quantile(t, 0.5) if t else None,
                _quantile(t, 0.9) if t else None,
            )
        )
    return out
