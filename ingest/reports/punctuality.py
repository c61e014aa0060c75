"""The punctuality report (on-time rate, delays, missed and cancelled visits, grouped) and
the ETA accuracy report, with the punctuality report's CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields
from datetime import date, datetime

from pydantic import BaseModel, Field

from ingest.punctuality.eta import HorizonAccuracy, PredictionOutcome, accuracy_by_horizon
from ingest.punctuality.figures import counted_visits
from ingest.punctuality.kpis import GroupBy, PunctualityFigures, figures, punctuality_figures
from ingest.punctuality.ledger import CoordinatorChange
from ingest.punctuality.visit_rows import VisitRow
from ingest.resolution import Minutes, Ratio


class FiguresOut(BaseModel):
    group: str
    visits: int
    held: int
    early: int
    on_time: int
    late: int
    missed: int
    cancelled: int
    pending: int
    on_time_rate: Ratio | None = Field(description="on time / (held + missed)")
    mean_delay_min: Minutes | None
    p90_delay_min: Minutes | None


class PunctualityReportOut(BaseModel):
    first: date = Field(serialization_alias="from")
    last: date = Field(serialization_alias="to")
    group_by: str
    groups: list[FiguresOut]
    total: FiguresOut


def _figures_out(f: PunctualityFigures) -> FiguresOut:
    data = asdict(f)
    for key in ("on_time_rate", "mean_delay_min", "p90_delay_min"):
        if data[key] is not None:
            data[key] = round(data[key], 3 if key == "on_time_rate" else 1)
    return FiguresOut(**data)


def punctuality_report(
    rows: Sequence[VisitRow],
    changes: Mapping[str, list[CoordinatorChange]],
    now: datetime,
    *,
    first: date,
    last: date,
    group_by: GroupBy,
) -> PunctualityReportOut:
    """The figures of the visits every report counts (due ones, by the one rule the
    reports share), per group and in total."""
    results = [v.result for v in counted_visits(rows, changes, now)]
    return PunctualityReportOut(
        first=first,
        last=last,
        group_by=group_by,
        groups=[_figures_out(f) for f in punctuality_figures(results, group_by)],
        total=_figures_out(figures("all", results)),
    )


def punctuality_csv(report: PunctualityReportOut) -> str:
    """One line per group then the total, the JSON's figures as they are."""
    out = io.StringIO()
    names = [f.name for f in fields(PunctualityFigures)]
    writer = csv.DictWriter(out, fieldnames=names, lineterminator="\r\n")
    writer.writeheader()
    for g in [*report.groups, report.total]:
        writer.writerow({k: "" if v is None else v for k, v in g.model_dump().items()})
    return out.getvalue()


class HorizonOut(BaseModel):
    bucket: str = Field(description="minutes from the prediction to the arrival")
    predictions: int
    eta_p50_s: float | None = Field(description="median absolute error of the ETA, seconds")
    eta_p90_s: float | None
    timetable_p50_s: float | None = Field(description="the same for the timetable")
    timetable_p90_s: float | None


class EtaAccuracyOut(BaseModel):
    first: date = Field(serialization_alias="from")
    last: date = Field(serialization_alias="to")
    rank: int | None = Field(description="1 = the next visit; null = every rank")
    horizons: list[HorizonOut]


def _seconds(value: float | None) -> float | None:
    return None if value is None else float(round(value))


def _horizon_out(a: HorizonAccuracy) -> HorizonOut:
    return HorizonOut(
        bucket=a.bucket,
        predictions=a.predictions,
        eta_p50_s=_seconds(a.eta_p50_s),
        eta_p90_s=_seconds(a.eta_p90_s),
        timetable_p50_s=_seconds(a.timetable_p50_s),
        timetable_p90_s=_seconds(a.timetable_p90_s),
    )


def eta_accuracy_report(
    outcomes: Sequence[PredictionOutcome], *, first: date, last: date, rank: int | None
) -> EtaAccuracyOut:
    """How far the published ETAs were from the arrivals, by horizon, beside the
    timetable's error at the same instants."""
    horizons = [_horizon_out(a) for a in accuracy_by_horizon(outcomes, rank)]
    return EtaAccuracyOut(first=first, last=last, rank=rank, horizons=horizons)
