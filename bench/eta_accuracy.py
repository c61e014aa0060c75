"""Accuracy of the ETAs of the next visits, against the timetable, on simulated days.

The simulated bus (``simulators.day_plan``) drives a timetable of four visits a day
(morning, late morning, early and late afternoon, a lunch break parked at the late
morning's stop), so the 1st, 2nd and 3rd next visits are all measured. Each day of the
test set is one of these cases: an ordinary day (parked at a stop, the depot in the
morning, lunch), a late start from the depot, a traffic jam, a detour through another
commune, a long dwell at a stop, and buses that never come (a visit skipped, a bus held
at the depot for hours). Before each test day the vehicle's history is built the way the
ingest builds it: three earlier weeks of the same weekday, simulated, their fixes through
the production detector, legs learned from moving time and habits from the visits held.

Every minute of a test day the fixes received so far go through a live
``ArrivalDetector``; the ETA model (``ingest.punctuality.eta.predict_arrivals``) predicts
the next three visits, and so does the plain model the product had before (the first leg
from "now", straight line × 1.3 at 45 km/h or the leg's median door-to-door speed). Each
prediction of a visit the bus really made is scored against its true arrival (when the
bus came to rest there), beside the timetable's error at the same instant, and bucketed
by the true time to arrival: 0–5, 5–15, 15–30, 30–60 and > 60 min. For a visit the bus
never made within its window, the moment its ETA could no longer hold is the first
minute from which the bus, setting off from where it really is and driving the
simulator's road, would reach the stop after its window closed; it is flagged when its
state turns ``doubtful`` or ``not_confirmed`` and stays so.

    .venv/bin/python bench/eta_accuracy.py [--jobs N] [--weeks 3]

Prints a table per rank and horizon bucket (count, p50 and p90 of the absolute error in
seconds for the ETA, the timetable and the previous model), the flagging delays, then a
last line of ``key=value`` pairs.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import os
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.geo import haversine_m
from ingest.itinerary import Itinerary, Slot, Stop, load_itinerary
from ingest.punctuality.classification import PunctualityThresholds, Stay, stays_from_events
from ingest.punctuality.detector import (
    ArrivalDetector,
    DetectorConfig,
    Fix,
    StopArrival,
    StopDeparture,
    StopEvent,
    detect_stops,
)
from ingest.punctuality.eta import (
    DEFAULT_DETOUR_FACTOR,
    HORIZON_BUCKETS,
    DrivingModel,
    HeldVisit,
    Prediction,
    horizon_bucket,
    learn_driving,
    learn_habits,
    leg_trips,
    predict_arrivals,
    upcoming_etas,
    whereabouts,
)
from ingest.punctuality.schedule import Visit, expand_schedule
from simulators.cli import bundled_itinerary
from simulators.day_plan import DayPlan, plan_day
from simulators.driving import drive
from simulators.labelled_days import receiver_fixes
from simulators.roads import Place, Road
from simulators.scenario import Scenario

VEHICLE = "vexin-01"
STEP = timedelta(minutes=1)
RANKS = (1, 2, 3)
FLAG_TARGET_S = 600.0
RECENT = timedelta(minutes=10)
# The previous model's figures: a leg's speed door to door, else 45 km/h, road = 1.3 × crow.
OLD_SPEED_MPS = 45 / 3.6
BUCKETS = [name for _, name in HORIZON_BUCKETS]

# (weekday, stop, arrive, depart): four visits a day, lunch between the 2nd and the 3rd.
TIMETABLE = [
    (1, "vesly", "08:30", "10:00"),
    (1, "hacqueville", "10:45", "12:00"),
    (1, "bezu-saint-eloi", "14:00", "15:30"),
    (1, "hebecourt", "16:15", "17:30"),
    (2, "hebecourt", "08:30", "10:00"),
    (2, "morgny", "10:45", "12:00"),
    (2, "hacqueville", "14:00", "15:30"),
    (2, "vesly", "16:15", "17:30"),
    (3, "bezu-saint-eloi", "08:45", "10:00"),
    (3, "vesly", "10:45", "12:15"),
    (3, "hacqueville", "13:45", "15:30"),
    (3, "morgny", "16:30", "17:45"),
]
# Mondays to Wednesdays of three test weeks; the history is the weeks before each.
FIRST_MONDAY = date(2027, 1, 18)


@dataclass(frozen=True)
class Case:
    name: str
    weekday: int
    week: int
    events: tuple[dict[str, Any], ...] = ()
    seed: int = 0


CASES = [
    Case("ordinary", 1, 0),
    Case("ordinary", 2, 1, seed=3),
    Case("ordinary", 3, 2, seed=5),
    Case("late-depot", 2, 0, ({"kind": "late_departure", "place": "depot", "delay_min": 25},)),
    Case(
        "traffic-jam",
        1,
        1,
        ({"kind": "traffic_jam", "at": "10:20", "duration_min": 25, "speed_kmh": 8},),
    ),
    Case(
        "traffic-jam",
        3,
        0,
        ({"kind": "traffic_jam", "at": "08:20", "duration_min": 20, "speed_kmh": 10},),
    ),
    Case(
        "detour",
        2,
        2,
        ({"kind": "drive_by", "stop": "bezu-saint-eloi", "on_way_to": "hacqueville"},),
    ),
    Case(
        "long-dwell", 1, 2, ({"kind": "late_departure", "place": "hacqueville", "delay_min": 70},)
    ),
    Case("long-dwell", 3, 1, ({"kind": "late_departure", "place": "vesly", "delay_min": 45},)),
    Case("never-comes", 1, 0, ({"kind": "stop_skipped", "stop": "hacqueville"},)),
    Case("never-comes", 2, 1, ({"kind": "stop_skipped", "stop": "hebecourt"},)),
    Case("never-comes", 3, 2, ({"kind": "late_departure", "place": "depot", "delay_min": 240},)),
]


@cache
def bench_itinerary() -> Itinerary:
    base = load_itinerary(bundled_itinerary())
    slots = [s for s in base.slots if s.vehicle != VEHICLE] + [
        Slot.model_validate(
            {"vehicle": VEHICLE, "weekday": w, "stop": stop, "arrive": a, "depart": d}
        )
        for w, stop, a, d in TIMETABLE
    ]
    return base.model_copy(update={"slots": slots})


def scenario(day: date, seed: int, events: Sequence[dict[str, Any]] = ()) -> Scenario:
    return Scenario.model_validate(
        {
            "name": f"eta-{day}",
            "seed": seed,
            "vehicle": {"id": VEHICLE},
            "day": {"date": day, "start": "07:00", "end": "18:30"},
            "event": list(events),
        }
    )


def held_visits(visits: Sequence[Visit], stays: Sequence[Stay]) -> list[HeldVisit]:
    """Each visit with the first arrival at its stop inside its window."""
    held = []
    for v in visits:
        for s in stays:
            early = v.scheduled_arrival - timedelta(hours=2)
            if s.stop == v.stop and early <= s.arrival <= v.scheduled_departure:
                held.append(HeldVisit(v, s.arrival))
                break
    return held


def old_leg_speeds(stays: Sequence[Stay], stops: dict[str, Stop]) -> dict[tuple[str, str], float]:
    """The previous model's leg speeds: road estimate over door-to-door time, median."""
    speeds: dict[tuple[str, str], list[float]] = defaultdict(list)
    ordered = sorted(stays, key=lambda s: s.arrival)
    for a, b in itertools.pairwise(ordered):
        if a.departure is None or a.stop == b.stop:
            continue
        duration = (b.arrival - a.departure).total_seconds()
        if not 0 < duration <= 3 * 3600:
            continue
        o, d = stops[a.stop], stops[b.stop]
        speeds[(a.stop, b.stop)].append(
            haversine_m(o.lat, o.lon, d.lat, d.lon) * DEFAULT_DETOUR_FACTOR / duration
        )
    return {k: sorted(v)[len(v) // 2] for k, v in speeds.items()}


@dataclass
class History:
    driving: DrivingModel
    habits: Any
    old_speeds: dict[tuple[str, str], float]


def build_history(day: date, weeks: int, stops: dict[str, Stop]) -> History:
    itinerary = bench_itinerary()
    config = DetectorConfig()
    stays: list[Stay] = []
    held: list[HeldVisit] = []
    fixes_all: list[Fix] = []
    for k in range(weeks, 0, -1):
        past = day - timedelta(weeks=k)
        events: list[dict[str, Any]] = []
        if k == 1:
            # A five-minute standstill on the way: not driving time.
            events.append({"kind": "traffic_light", "stop": TIMETABLE_STOPS[day.isoweekday()][1]})
            events[-1]["wait_s"] = 300
        plan = plan_day(scenario(past, 1000 + k, events), itinerary)
        fixes = receiver_fixes(plan)
        fixes_all.extend(fixes)
        day_stays = stays_from_events(detect_stops(VEHICLE, itinerary.stops, fixes, config))
        stays.extend(day_stays)
        visits = expand_schedule(itinerary, past, past, vehicles=[VEHICLE])
        held.extend(held_visits(visits, day_stays))
    times = [f.t for f in fixes_all]

    def between(start: datetime, end: datetime) -> list[Fix]:
        return fixes_all[bisect.bisect_left(times, start) : bisect.bisect_right(times, end)]

    default = DrivingModel.default(65.0, 1.2)
    return History(
        learn_driving(leg_trips(stays, between), stops, default),
        learn_habits(held),
        old_leg_speeds(stays, stops),
    )


TIMETABLE_STOPS: dict[int, list[str]] = defaultdict(list)
for _w, _stop, _a, _d in TIMETABLE:
    TIMETABLE_STOPS[_w].append(_stop)


@dataclass(frozen=True)
class Sample:
    case: str
    rank: int
    bucket: str
    eta_s: float
    timetable_s: float
    old_s: float
    inside: bool | None  # the arrival within the interval (None: no upper bound given)


@dataclass(frozen=True)
class Flag:
    case: str
    visit: str
    lost_at: datetime
    flagged_at: datetime | None
    delay_s: float | None


@dataclass(frozen=True)
class DayResult:
    label: str
    samples: list[Sample]
    flags: list[Flag]
    false_doubtful: int
    false_not_confirmed: int


def true_arrivals(plan: DayPlan, visits: Sequence[Visit]) -> dict[str, datetime]:
    """Visit id → when the bus came to rest at its stop within its window."""
    out = {}
    for v in visits:
        for pv in plan.visits:
            if pv.stop.id == v.stop and pv.arrival_s is not None:
                t = plan.time_of(pv.arrival_s)
                if v.scheduled_arrival - timedelta(hours=2) <= t <= v.scheduled_departure:
                    out[v.id] = t
    return out


def arrival_if_leaving(plan: DayPlan, t: datetime, stop: Stop) -> datetime:
    """When the bus would reach ``stop`` setting off at ``t`` from where it really is."""
    motion = plan.motion_at(plan.seconds_of(t))
    here = Place("here", motion.lat, motion.lon)
    if haversine_m(motion.lat, motion.lon, stop.lat, stop.lon) < stop.radius_m:
        return t
    towns = [Place(s.id, s.lat, s.lon) for s in plan.itinerary.stops]
    road = Road([here, Place(stop.id, stop.lat, stop.lon)], towns)
    trajectory = drive(
        road,
        0.0,
        accel_mps2=plan.scenario.vehicle.accel_mps2,
        brake_mps2=plan.scenario.vehicle.brake_mps2,
    )
    return t + timedelta(seconds=trajectory.duration_s)


def evaluate(job: tuple[Case, int]) -> DayResult:
    case, weeks = job
    itinerary = bench_itinerary()
    stops = {s.id: s for s in itinerary.stops}
    day = FIRST_MONDAY + timedelta(weeks=case.week, days=case.weekday - 1)
    history = build_history(day, weeks, stops)
    plan = plan_day(scenario(day, case.seed, case.events), itinerary)
    visits = expand_schedule(itinerary, day, day, vehicles=[VEHICLE])
    truth = true_arrivals(plan, visits)
    bands = PunctualityThresholds()
    fixes = receiver_fixes(plan)
    detector = ArrivalDetector(VEHICLE, itinerary.stops, DetectorConfig())
    events: list[StopEvent] = []
    samples: list[Sample] = []
    states: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    i = 0
    t = plan.start + STEP
    while t < plan.end:
        while i < len(fixes) and fixes[i].t <= t:
            events.extend(detector.feed(fixes[i]))
            i += 1
        recent = [f for f in fixes[max(0, i - 900) : i] if f.t >= t - RECENT]
        if recent:
            samples_now = predict_now(t, recent, events, detector, visits, stops, history, bands)[0]
            new, old = samples_now
            for p in new:
                states[p.visit.id].append((t, p.state))
                arrival = truth.get(p.visit.id)
                if arrival is None or arrival <= t:
                    continue
                old_eta = old.get(p.visit.id)
                if old_eta is None:
                    continue
                to_go = (arrival - t).total_seconds()
                samples.append(
                    Sample(
                        case.name,
                        p.rank,
                        horizon_bucket(to_go),
                        abs((p.expected_arrival - arrival).total_seconds()),
                        abs((p.visit.scheduled_arrival - arrival).total_seconds()),
                        abs((old_eta - arrival).total_seconds()),
                        None if p.latest is None else p.earliest <= arrival <= p.latest,
                    )
                )
        t += STEP
    flags = []
    false_doubtful = false_unconfirmed = 0
    for v in visits:
        seen = states.get(v.id, [])
        if v.id in truth:
            before = [s for when, s in seen if when < truth[v.id]]
            false_doubtful += "doubtful" in before
            false_unconfirmed += "not_confirmed" in before
            continue
        closes = v.scheduled_departure
        lost = next(
            (
                w
                for w in _minutes(closes - timedelta(hours=4), closes)
                if arrival_if_leaving(plan, w, stops[v.stop]) > closes
            ),
            closes,
        )
        flagged_at = None
        for when, state in seen:
            if state in ("doubtful", "not_confirmed"):
                if flagged_at is None:
                    flagged_at = when
            else:
                flagged_at = None
        delay = None if flagged_at is None else (flagged_at - lost).total_seconds()
        flags.append(Flag(case.name, v.id, lost, flagged_at, delay))
    return DayResult(f"{case.name}/{day}", samples, flags, false_doubtful, false_unconfirmed)


def _minutes(start: datetime, end: datetime) -> list[datetime]:
    out = []
    t = start.replace(second=0, microsecond=0)
    while t <= end:
        out.append(t)
        t += STEP
    return out


def predict_now(  # noqa: PLR0917
    t: datetime,
    recent: Sequence[Fix],
    events: Sequence[StopEvent],
    detector: ArrivalDetector,
    visits: Sequence[Visit],
    stops: dict[str, Stop],
    history: History,
    bands: PunctualityThresholds,
) -> tuple[tuple[list[Prediction], dict[str, datetime]], set[str]]:
    stays = stays_from_events(events)
    made = {h.visit.id for h in held_visits(visits, stays)}
    at_stop = detector.current_stop
    if at_stop is not None:
        made |= {
            v.id
            for v in visits
            if v.stop == at_stop and v.scheduled_arrival - timedelta(hours=2) <= t
        }
    last_stop = next((e.stop for e in reversed(events) if isinstance(e, StopDeparture)), None)
    current = max(
        (v for v in visits if v.id in made and v.stop == at_stop),
        key=lambda v: v.scheduled_arrival,
        default=None,
    )
    where = whereabouts(recent, at_stop=at_stop, last_stop=last_stop)
    new = predict_arrivals(
        where,
        visits=visits,
        stops=stops,
        driving=history.driving,
        habits=history.habits,
        thresholds=bands,
        made=made,
        current=current,
        limit=3,
    )
    latest = recent[-1]
    from_stop = at_stop or last_stop
    old = upcoming_etas(
        VEHICLE,
        latest.lat,
        latest.lon,
        t,
        visits=visits,
        stops=stops,
        speed_mps=OLD_SPEED_MPS,
        done=made,
        limit=3,
        leg_speed_mps=history.old_speeds,
        from_stop=from_stop,
    )
    assert all(isinstance(e, StopArrival | StopDeparture) for e in events)
    return (new, {e.visit.id: e.expected_arrival for e in old}), made


def quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(q * len(ordered) + 0.5) - 1))]


def _f(v: float | None) -> str:
    return "nan" if v is None else f"{v:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--weeks", type=int, default=3, help="weeks of history per test day")
    parser.add_argument("--case", action="append", help="only these cases (repeatable)")
    args = parser.parse_args()
    cases = [c for c in CASES if not args.case or c.name in args.case]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(evaluate, [(c, args.weeks) for c in cases]))
    elapsed = time.perf_counter() - started
    samples = [s for r in results for s in r.samples]
    flags = [f for r in results for f in r.flags]

    print(f"{'rank':>4} {'bucket':>6} {'n':>5}  eta_p50 eta_p90  tt_p50  tt_p90 old_p50 old_p90")
    key: dict[str, Any] = {}
    beats = True
    for rank in RANKS:
        for bucket in BUCKETS:
            own = [s for s in samples if s.rank == rank and s.bucket == bucket]
            eta = [s.eta_s for s in own]
            tt = [s.timetable_s for s in own]
            old = [s.old_s for s in own]
            e50, e90, t50, t90 = (
                quantile(eta, 0.5),
                quantile(eta, 0.9),
                quantile(tt, 0.5),
                quantile(tt, 0.9),
            )
            print(
                f"{rank:>4} {bucket:>6} {len(own):>5}  {_f(e50):>7} {_f(e90):>7} "
                f"{_f(t50):>7} {_f(t90):>7} {_f(quantile(old, 0.5)):>7} "
                f"{_f(quantile(old, 0.9)):>7}"
            )
            if e50 is not None and t50 is not None and e50 > t50:
                beats = False
            if rank == 1:
                name = bucket.replace("-", "_").replace(">", "over")
                key[f"eta_p50_{name}"] = _f(e50)
                key[f"tt_p50_{name}"] = _f(t50)
    for case in dict.fromkeys(c.name for c in cases):
        own = [s for s in samples if s.case == case]
        print(
            f"case={case} n={len(own)} eta_p50={_f(quantile([s.eta_s for s in own], 0.5))} "
            f"tt_p50={_f(quantile([s.timetable_s for s in own], 0.5))} "
            f"old_p50={_f(quantile([s.old_s for s in own], 0.5))}"
        )
    for f in flags:
        print(
            f"not coming {f.case} {f.visit}: could no longer hold {f.lost_at:%H:%M}Z, "
            f"flagged {'never' if f.flagged_at is None else f'{f.flagged_at:%H:%M}Z'} "
            f"({'-' if f.delay_s is None else f'{f.delay_s:+.0f} s'})"
        )
    bounded = [s.inside for s in samples if s.inside is not None]
    coverage = sum(bounded) / len(bounded) if bounded else None
    print(
        f"intervals: {len(bounded)} bounded predictions, arrival inside "
        f"{'nan' if coverage is None else f'{coverage:.3f}'}; "
        f"{len(samples) - len(bounded)} without an upper bound"
    )
    delays = [f.delay_s for f in flags if f.delay_s is not None]
    unflagged = sum(1 for f in flags if f.delay_s is None)
    worst = max(delays, default=None)
    p50_0_5 = quantile([s.eta_s for s in samples if s.rank == 1 and s.bucket == "0-5"], 0.5)
    p50_5_15 = quantile([s.eta_s for s in samples if s.rank == 1 and s.bucket == "5-15"], 0.5)
    targets = (
        beats
        and p50_0_5 is not None
        and p50_0_5 <= 60
        and p50_5_15 is not None
        and p50_5_15 <= 180
        and unflagged == 0
        and (worst is None or worst <= FLAG_TARGET_S)
    )
    print(
        f"days={len(results)} predictions={len(samples)} "
        + " ".join(f"{k}={v}" for k, v in key.items())
        + f" beats_timetable_every_bucket_and_rank={beats} not_coming={len(flags)} "
        f"unflagged={unflagged} worst_flag_delay_s={_f(worst)} "
        f"false_doubtful={sum(r.false_doubtful for r in results)} "
        f"false_not_confirmed={sum(r.false_not_confirmed for r in results)} "
        f"interval_coverage={'nan' if coverage is None else f'{coverage:.3f}'} "
        f"targets_met={targets} elapsed_s={elapsed:.0f}"
    )


if __name__ == "__main__":
    main()
