"""A fleet's day of telemetry, as the buses' agents send it: many buses on the bundled
itinerary's timetables, each driving a planned scenario day, for measuring the ingest
with several workers against one.

The fleet is the itinerary's buses copied: ``vexin-01`` gives ``vexin-01``,
``vexin-01-b``, ``vexin-01-c``… with the same slots, depot and settings. Each drives its
original's bundled scenario on ``day``, and sends:

- GPS batches from its receiver's fixes (one kept every ``fix_every_s``);
- battery readings every minute, its state of charge running down through the day, to
  below the low-battery threshold for every fifth bus;
- fridge readings every minute, at 5 °C, with a warm spell (over 8 °C for most of an
  hour) around noon for every fourth bus;

in batches of ``batch_s`` seconds, ``seq`` +1 per batch for each bus and stream.
Deterministic: the same arguments give the same batches.
"""

from __future__ import annotations

import math
import string
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import tomli_w

from ingest.itinerary import Itinerary
from protocol.models import (
    Batch,
    EnergyBatch,
    EnergySample,
    FridgeBatch,
    FridgeSample,
    GpsBatch,
    GpsSample,
)
from simulators.day_plan import plan_day
from simulators.labelled_days import receiver_fixes
from simulators.scenario import bundled_scenarios, load_scenario

# The bundled scenario each original bus drives.
SCENARIO_OF = {"vexin-01": "vexin-monday-on-time", "caux-01": "caux-traffic-jam"}
AUX_EVERY_S = 60.0


@dataclass(frozen=True)
class FleetDay:
    itinerary_toml: str
    batches: dict[str, list[Batch]]  # by vehicle, in the order its agent sends them

    @property
    def count(self) -> int:
        return sum(len(b) for b in self.batches.values())

    @property
    def samples(self) -> int:
        return sum(len(b.samples) for bs in self.batches.values() for b in bs)

    def interleaved(self) -> Iterator[Batch]:
        """Every bus's batches, the buses taking turns (as they would send them)."""
        queues = [list(b) for b in self.batches.values()]
        longest = max((len(q) for q in queues), default=0)
        for i in range(longest):
            for q in queues:
                if i < len(q):
                    yield q[i]


def _copy_id(original: str, k: int) -> str:
    return original if k == 0 else f"{original}-{string.ascii_lowercase[k]}"


def fleet_itinerary(raw: dict[str, Any], count: int) -> dict[str, Any]:
    """The itinerary with its buses copied to ``count`` of them (the originals in turn)."""
    originals = [v for v in raw["vehicle"] if v["id"] in SCENARIO_OF]
    if not 1 <= count <= len(originals) * 26:
        raise ValueError(f"1 to {len(originals) * 26} buses, got {count}")
    vehicles = []
    slots = []
    for n in range(count):
        original = originals[n % len(originals)]
        copy_id = _copy_id(original["id"], n // len(originals))
        vehicles.append({**original, "id": copy_id, "label": f"{original['label']} {n + 1}"})
        slots += [{**s, "vehicle": copy_id} for s in raw["slot"] if s["vehicle"] == original["id"]]
    return {**raw, "vehicle": vehicles, "slot": slots}


def fleet_day(
    itinerary_file: Path,
    count: int,
    day: date,
    *,
    fix_every_s: float = 10.0,
    batch_s: float = 60.0,
) -> FleetDay:
    raw = tomllib.loads(itinerary_file.read_text())
    text = tomli_w.dumps(fleet_itinerary(raw, count))
    itinerary = Itinerary.model_validate(tomllib.loads(text))
    bundled = bundled_scenarios()
    plans = {}
    fixes = {}
    for original, name in SCENARIO_OF.items():
        # One plan per original (a receiver's day is costly to compute); each copy keeps
        # other fixes of it.
        scenario = load_scenario(bundled[name]).on(day)
        plans[original] = plan_day(scenario, _original_itinerary(raw))
        fixes[original] = receiver_fixes(plans[original])
    batches: dict[str, list[Batch]] = {}
    for n, vehicle in enumerate(itinerary.vehicles):
        original = next(o for o in SCENARIO_OF if vehicle.id.startswith(o))
        plan = plans[original]
        offset = timedelta(seconds=(n // len(SCENARIO_OF)) % max(1, int(fix_every_s)))
        kept: list[GpsSample] = []
        for fix in fixes[original]:
            if fix.t - plan.start < offset:
                continue
            if kept and (fix.t - kept[-1].t).total_seconds() < fix_every_s:
                continue
            kept.append(
                GpsSample(
                    t=fix.t,
                    lat=fix.lat,
                    lon=fix.lon,
                    speed_mps=fix.speed_mps,
                    fix_mode=3,
                    sats=9,
                    hdop=0.9,
                )
            )
        start, end = plan.start, plan.end
        minutes = int((end - start).total_seconds() // AUX_EVERY_S)
        times = [start + timedelta(seconds=AUX_EVERY_S * i) for i in range(minutes + 1)]
        low = n % 5 == 4
        warm = n % 4 == 3
        noon = start.replace(hour=11, minute=0)  # UTC: noon in Paris
        energy = [
            EnergySample(
                t=t,
                voltage_v=13.2 - 1.2 * i / len(times),
                soc_pct=round(95.0 - (85.0 if low else 35.0) * i / len(times), 2),
                source="bmv",
            )
            for i, t in enumerate(times)
        ]
        fridge = [
            FridgeSample(
                t=t,
                temp_c=round(
                    (10.5 if warm and timedelta(0) <= t - noon < timedelta(minutes=50) else 5.0)
                    + 0.3 * math.sin(i / 7.0),
                    2,
                ),
                door_open=False,
            )
            for i, t in enumerate(times)
        ]
        own: list[Batch] = []
        for stream, samples in (("gps", kept), ("energy", energy), ("fridge", fridge)):
            windows: dict[int, list[Any]] = {}
            for sample in samples:
                windows.setdefault(int((sample.t - start).total_seconds() // batch_s), []).append(
                    sample
                )
            own += [
                _batch(stream, vehicle.id, seq, part)
                for seq, (_, part) in enumerate(sorted(windows.items()), start=1)
            ]
        own.sort(key=lambda b: b.samples[0].t)
        batches[vehicle.id] = own
    return FleetDay(text, batches)


def _original_itinerary(raw: dict[str, Any]) -> Itinerary:
    return Itinerary.model_validate(raw)


def _batch(stream: str, vehicle: str, seq: int, samples: list[Any]) -> Batch:
    if stream == "gps":
        return GpsBatch(vehicle=vehicle, seq=seq, samples=samples)
    if stream == "energy":
        return EnergyBatch(vehicle=vehicle, seq=seq, samples=samples)
    return FridgeBatch(vehicle=vehicle, seq=seq, samples=samples)
