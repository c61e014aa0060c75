"""The yearly report a funder asks of each vehicle: distance, energy, CO₂e and the trips
avoided, the cold chain's compliance, and the visits. Figures this system does not have
are null with a note saying why, never estimated."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

from pydantic import BaseModel, Field

from ingest.coldchain.daily import FridgeDay
from ingest.coldchain.storage import FridgeAlarmRecord
from ingest.reports.coldchain import DayCounts, day_counts
from ingest.reports.footprint import (
    AuxiliaryOut,
    AvoidedOut,
    BalanceOut,
    Co2eOut,
    EnergyOut,
    FootprintReport,
    IdlingOut,
    IntensityOut,
)
from ingest.resolution import Energy, Kilometres, Minutes
from ingest.settings import FridgeRules
from ingest.visit_figures import PunctualitySummary, VisitCounts


class EnergyYear(BaseModel):
    traction: EnergyOut
    idling: IdlingOut
    auxiliary: AuxiliaryOut
    solar_kwh: Energy | None


class ColdChainYear(BaseModel):
    rules: FridgeRules
    days: DayCounts
    alarms: dict[str, int] = Field(description="alarms by kind (heat, freeze, early_warning)")
    alarms_acknowledged: int
    alarms_unacknowledged: int


class VisitsOut(BaseModel):
    scheduled: int
    held: int
    cancelled: int


class PunctualityOut(BaseModel):
    early: int
    on_time: int
    late: int
    missed: int
    mean_delay_min: Minutes | None


class FunderReport(BaseModel):
    vehicle: str
    operator: str
    label: str
    year: int
    start: date = Field(serialization_alias="from")
    end: date = Field(serialization_alias="to")
    timezone: str
    distance_km: Kilometres
    operating_days: int
    energy: EnergyYear
    co2e: Co2eOut
    per_km: IntensityOut | None
    avoided: AvoidedOut | None
    balance: BalanceOut | None
    coldchain: ColdChainYear
    visits: VisitsOut | None
    patients_seen: int | None
    punctuality: PunctualityOut | None
    notes: list[str]


def funder_report(
    *,
    year: int,
    footprint: FootprintReport,
    fridge_days: Sequence[FridgeDay],
    fridge_rules: FridgeRules,
    alarms: Sequence[FridgeAlarmRecord],
    counts: VisitCounts | None,
    patients_seen: int | None,
    punctuality: PunctualitySummary | None,
) -> FunderReport:
    notes = list(footprint.notes)
    if counts is None:
        notes.append("visits held and scheduled: not recorded in this system")
    if patients_seen is None:
        notes.append("patients seen: not recorded in this system")
    if punctuality is None:
        notes.append("punctuality: not recorded in this system")
    kinds = Counter(a.kind for a in alarms)
    acknowledged = sum(1 for a in alarms if a.ack_at is not None)
    t = footprint.totals
    return FunderReport(
        vehicle=footprint.vehicle,
        operator=footprint.operator,
        label=footprint.label,
        year=year,
        start=footprint.start,
        end=footprint.end,
        timezone=footprint.timezone,
        distance_km=t.distance_km,
        operating_days=footprint.operating_days,
        energy=EnergyYear(
            traction=t.traction, idling=t.idling, auxiliary=t.auxiliary, solar_kwh=t.solar_kwh
        ),
        co2e=t.co2e,
        per_km=t.per_km,
        avoided=t.avoided,
        balance=t.balance,
        coldchain=ColdChainYear(
            rules=fridge_rules,
            days=day_counts(fridge_days),
            alarms={k: kinds.get(k, 0) for k in ("heat", "freeze", "early_warning")},
            alarms_acknowledged=acknowledged,
            alarms_unacknowledged=len(alarms) - acknowledged,
        ),
        visits=None
        if counts is None
        else VisitsOut(scheduled=counts.scheduled, held=counts.held, cancelled=counts.cancelled),
        patients_seen=patients_seen,
        punctuality=None
        if punctuality is None
        else PunctualityOut(
            early=punctuality.early,
            on_time=punctuality.on_time,
            late=punctuality.late,
            missed=punctuality.missed,
            mean_delay_min=punctuality.mean_delay_min,
        ),
        notes=notes,
    )


def _flat(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _flat(f"{prefix}.{key}" if prefix else key, inner)
    elif isinstance(value, list):
        yield prefix, " | ".join(str(v) for v in value)
    else:
        yield prefix, value


def funder_csv(report: FunderReport) -> str:
    """The year as ``figure,value`` lines (RFC 4180, header first): each figure of the JSON
    report named by its path (``coldchain.days.in_range``), an empty value where the
    system does not hold it, notes joined by `` | ``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["figure", "value"])
    for name, value in _flat("", report.model_dump(mode="json", by_alias=True)):
        writer.writerow([name, "" if value is None else value])
    return out.getvalue()
