"""The footprint report of one vehicle over a run of local days, from its daily records.

Every CO₂e figure carries the factor set it was computed with (id, version, date). The
car trips the bus avoided are shown beside the bus's own emissions, with their own
factor, never added into them; the net balance is a separate figure.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from datetime import date
from typing import Final, Literal

from pydantic import BaseModel, Field

from ingest.footprint.avoided import (
    CarTripFactor,
    VisitAttendance,
    avoided_trips,
    footprint_balance,
)
from ingest.footprint.emissions import (
    EmissionIntensity,
    Emissions,
    FactorSetRef,
    intensity,
    total,
)
from ingest.footprint.energy import CARRIER_UNIT, Carrier, EnergyUnit
from ingest.footprint.records import StoredFootprintDay
from ingest.reports.configuration import ReportConfiguration
from ingest.resolution import Energy, Hours, KgCo2e, Kilometres
from ingest.visit_figures import VisitCounts

NOT_RECORDED: Final = "not recorded: visits and patients seen are not available to this report"


class FactorSetOut(BaseModel):
    id: str
    version: str
    date: date
    source: str

    @classmethod
    def of(cls, ref: FactorSetRef) -> FactorSetOut:
        return cls(id=ref.id, version=ref.version, date=ref.date, source=ref.source)


class Co2eOut(BaseModel):
    ttw_kgco2e: KgCo2e
    wtt_kgco2e: KgCo2e
    wtw_kgco2e: KgCo2e
    factor_set: FactorSetOut

    @classmethod
    def of(cls, e: Emissions) -> Co2eOut:
        return cls(
            ttw_kgco2e=e.ttw_kgco2e,
            wtt_kgco2e=e.wtt_kgco2e,
            wtw_kgco2e=e.wtw_kgco2e,
            factor_set=FactorSetOut.of(e.factor_set),
        )


class IntensityOut(Co2eOut):
    per: str

    @classmethod
    def of_intensity(cls, i: EmissionIntensity | None) -> IntensityOut | None:
        if i is None:
            return None
        return cls(
            ttw_kgco2e=i.ttw_kgco2e,
            wtt_kgco2e=i.wtt_kgco2e,
            wtw_kgco2e=i.wtw_kgco2e,
            factor_set=FactorSetOut.of(i.factor_set),
            per=i.per,
        )


class EnergyOut(BaseModel):
    carrier: Carrier
    quantity: Energy
    unit: EnergyUnit


class IdlingOut(BaseModel):
    measured: bool = Field(description="false: no engine on/off events, idling unknown")
    measured_days: int = Field(description="days whose idling is known and counted")
    hours: Hours | None
    fuel: EnergyOut | None
    rate_per_h: Energy | None
    source: str | None


class AuxiliaryOut(BaseModel):
    drawn_kwh: Energy
    charged_kwh: Energy
    net_kwh: Energy
    gap_hours: Hours = Field(description="time without battery readings (not integrated)")


FuelSource = Literal["model", "measured", "mixed"]


class FuelOut(BaseModel):
    source: FuelSource = Field(
        description="measured: the CO2e is that of the fuel the engine reported (OBD-II), "
        "its readings covering the driving; model: consumption x distance and idling; "
        "mixed: some days each"
    )
    measured_days: int = Field(description="days whose CO2e comes from measured fuel")
    measured_litres: Energy | None = Field(
        description="fuel the engine reported over those days (none: no readings)"
    )
    coverage: float | None = Field(
        default=None, description="a day's share of moving fixes covered by the readings"
    )


def _fuel(days: Sequence[StoredFootprintDay]) -> FuelOut:
    measured = [d for d in days if d.fuel_source == "measured"]
    source: FuelSource = (
        "model" if not measured else "measured" if len(measured) == len(days) else "mixed"
    )
    litres = [d.measured_fuel_l for d in measured if d.measured_fuel_l is not None]
    return FuelOut(
        source=source,
        measured_days=len(measured),
        measured_litres=math.fsum(litres) if measured else None,
        coverage=days[0].measured_coverage if len(days) == 1 else None,
    )


class FootprintDayOut(BaseModel):
    date: date
    complete: bool
    distance_km: Kilometres
    fuel: FuelOut
    traction: EnergyOut
    idling: IdlingOut
    auxiliary: AuxiliaryOut
    solar_kwh: Energy | None
    co2e: Co2eOut
    per_km: IntensityOut | None


class CarFactorOut(BaseModel):
    id: str
    name: str
    version: str
    date: date
    source: str
    kgco2e_per_km: KgCo2e


class AvoidedOut(BaseModel):
    visits: int
    patients_seen: int
    car_km: Kilometres
    kgco2e: KgCo2e
    car_factor: CarFactorOut


class BalanceOut(BaseModel):
    """The bus's well-to-wheel emissions next to the car trips it avoided."""

    bus_wtw_kgco2e: KgCo2e
    avoided_kgco2e: KgCo2e
    net_kgco2e: KgCo2e = Field(description="bus minus avoided; below zero the bus saved CO2e")
    factor_set: FactorSetOut
    car_factor_id: str
    note: str


class FootprintTotals(BaseModel):
    distance_km: Kilometres
    fuel: FuelOut
    traction: EnergyOut
    idling: IdlingOut
    auxiliary: AuxiliaryOut
    solar_kwh: Energy | None
    co2e: Co2eOut
    per_km: IntensityOut | None
    per_operating_day: IntensityOut | None
    per_visit: IntensityOut | None
    avoided: AvoidedOut | None
    balance: BalanceOut | None


class FootprintReport(BaseModel):
    vehicle: str
    operator: str
    label: str
    start: date = Field(serialization_alias="from")
    end: date = Field(serialization_alias="to")
    timezone: str
    days_with_data: int
    operating_days: int = Field(description="days the vehicle drove")
    pending_days: int = Field(description="days waiting to be recomputed (figures may change)")
    totals: FootprintTotals
    days: list[FootprintDayOut]
    notes: list[str]


def _energy(carrier: Carrier, quantity: float) -> EnergyOut:
    return EnergyOut(carrier=carrier, quantity=quantity, unit=CARRIER_UNIT[carrier])


def _emissions(d: StoredFootprintDay) -> Emissions:
    return Emissions(d.ttw_kgco2e, d.wtt_kgco2e, d.factor_set)


def _idling(days: Sequence[StoredFootprintDay]) -> IdlingOut:
    """Idling over the days where it was measured."""
    known = [d for d in days if d.idling_measured]
    if not known:
        return IdlingOut(
            measured=False, measured_days=0, hours=None, fuel=None, rate_per_h=None, source=None
        )
    last = known[-1]
    return IdlingOut(
        measured=len(known) == len(days),
        measured_days=len(known),
        hours=math.fsum(d.idling.total_seconds() for d in known) / 3600,
        fuel=_energy(last.traction_carrier, math.fsum(d.idling_quantity for d in known)),
        rate_per_h=last.idling_rate_per_h,
        source=last.idling_source,
    )


def day_out(d: StoredFootprintDay) -> FootprintDayOut:
    e = _emissions(d)
    return FootprintDayOut(
        date=d.day,
        complete=d.complete,
        distance_km=d.distance_km,
        fuel=_fuel([d]),
        traction=_energy(d.traction_carrier, d.traction_quantity),
        idling=_idling([d]),
        auxiliary=AuxiliaryOut(
            drawn_kwh=d.aux_drawn_kwh,
            charged_kwh=d.aux_charged_kwh,
            net_kwh=d.aux_charged_kwh - d.aux_drawn_kwh,
            gap_hours=d.aux_gap.total_seconds() / 3600,
        ),
        solar_kwh=d.solar_kwh,
        co2e=Co2eOut.of(e),
        per_km=IntensityOut.of_intensity(intensity(e, d.distance_km, "km")),
    )


def _car(factor: CarTripFactor) -> CarFactorOut:
    return CarFactorOut(
        id=factor.id,
        name=factor.name,
        version=factor.version,
        date=factor.date,
        source=factor.source,
        kgco2e_per_km=factor.kgco2e_per_km,
    )


def footprint_report(
    *,
    vehicle: str,
    operator: str,
    label: str,
    traction_carrier: Carrier,
    start: date,
    end: date,
    days: Sequence[StoredFootprintDay],
    configuration: ReportConfiguration,
    pending_days: int,
    attendance: Sequence[VisitAttendance] | None,
    counts: VisitCounts | None = None,
) -> FootprintReport:
    """Raises :class:`~ingest.footprint.emissions.FactorSetMismatchError` when the days
    were computed with different factor sets (the settings changed and the ingest is
    recomputing)."""
    notes: list[str] = []
    ref = days[0].factor_set if days else _configured_ref(configuration)
    bus = total((_emissions(d) for d in days), ref)
    distance = math.fsum([d.distance_km for d in days])
    operating = sum(1 for d in days if d.distance_km > 0)
    unmeasured = sum(1 for d in days if not d.idling_measured)
    if unmeasured:
        notes.append(
            f"idling not measured on {unmeasured} day(s) (no engine on/off events): "
            "it is left out of the CO2e of those days"
        )
    solar = [d.solar_kwh for d in days if d.solar_kwh is not None]
    held = None if attendance is None else len(attendance)
    avoided: AvoidedOut | None = None
    balance: BalanceOut | None = None
    if attendance is None:
        notes.append(f"avoided patient trips and per-visit figures {NOT_RECORDED}")
    else:
        car = configuration.car_trip_factor
        trips = [avoided_trips(v, car) for v in attendance]
        result = footprint_balance(bus, trips, car)
        avoided = AvoidedOut(
            visits=result.visits,
            patients_seen=result.patients_seen,
            car_km=result.avoided_car_km,
            kgco2e=result.avoided_kgco2e,
            car_factor=_car(car),
        )
        balance = BalanceOut(
            bus_wtw_kgco2e=result.bus.wtw_kgco2e,
            avoided_kgco2e=result.avoided_kgco2e,
            net_kgco2e=result.net_kgco2e,
            factor_set=FactorSetOut.of(result.bus.factor_set),
            car_factor_id=car.id,
            note="the car factor's boundary is its publisher's, not the bus's well-to-wheel",
        )
    if counts is not None:
        held = counts.held
    totals = FootprintTotals(
        distance_km=distance,
        fuel=_fuel(days),
        traction=_energy(traction_carrier, math.fsum([d.traction_quantity for d in days])),
        idling=_idling(days),
        auxiliary=AuxiliaryOut(
            drawn_kwh=math.fsum([d.aux_drawn_kwh for d in days]),
            charged_kwh=math.fsum([d.aux_charged_kwh for d in days]),
            net_kwh=math.fsum([d.aux_charged_kwh - d.aux_drawn_kwh for d in days]),
            gap_hours=math.fsum([d.aux_gap.total_seconds() for d in days]) / 3600,
        ),
        solar_kwh=math.fsum(solar) if solar else None,
        co2e=Co2eOut.of(bus),
        per_km=IntensityOut.of_intensity(intensity(bus, distance, "km")),
        per_operating_day=IntensityOut.of_intensity(intensity(bus, operating, "operating day")),
        per_visit=IntensityOut.of_intensity(intensity(bus, held, "visit")) if held else None,
        avoided=avoided,
        balance=balance,
    )
    if pending_days:
        notes.append(f"{pending_days} day(s) waiting to be recomputed: figures may change")
    return FootprintReport(
        vehicle=vehicle,
        operator=operator,
        label=label,
        start=start,
        end=end,
        timezone=configuration.timezone,
        days_with_data=len(days),
        operating_days=operating,
        pending_days=pending_days,
        totals=totals,
        days=[day_out(d) for d in days],
        notes=notes,
    )


def _configured_ref(configuration: ReportConfiguration) -> FactorSetRef:
    f = configuration.factor_set
    return FactorSetRef(id=f.id, version=f.version, date=f.date, source=f.source)


CSV_COLUMNS: Final = (
    "vehicle",
    "date",
    "timezone",
    "complete",
    "distance_km",
    "traction_carrier",
    "traction_quantity",
    "traction_unit",
    "idling_measured",
    "idling_h",
    "idling_quantity",
    "aux_drawn_kwh",
    "aux_charged_kwh",
    "solar_kwh",
    "ttw_kgco2e",
    "wtt_kgco2e",
    "wtw_kgco2e",
    "wtw_kgco2e_per_km",
    "fuel_source",
    "measured_fuel_l",
    "factor_set_id",
    "factor_set_version",
    "factor_set_date",
)


def _num(x: float | None, digits: int = 3) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def _row(
    vehicle: str, day: str, zone: str, complete: bool, f: FootprintDayOut | FootprintTotals
) -> list[str]:
    idle = f.idling
    return [
        vehicle,
        day,
        zone,
        "true" if complete else "false",
        _num(f.distance_km),
        f.traction.carrier,
        _num(f.traction.quantity),
        f.traction.unit,
        "true" if idle.measured else "false",
        _num(idle.hours),
        _num(idle.fuel.quantity if idle.fuel is not None else None),
        _num(f.auxiliary.drawn_kwh),
        _num(f.auxiliary.charged_kwh),
        _num(f.solar_kwh),
        _num(f.co2e.ttw_kgco2e),
        _num(f.co2e.wtt_kgco2e),
        _num(f.co2e.wtw_kgco2e),
        _num(f.per_km.wtw_kgco2e if f.per_km is not None else None, 4),
        f.fuel.source,
        _num(f.fuel.measured_litres),
        f.co2e.factor_set.id,
        f.co2e.factor_set.version,
        f.co2e.factor_set.date.isoformat(),
    ]


def footprint_csv(report: FootprintReport) -> str:
    """One line per day, then a line ``total`` (RFC 4180, header first)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for d in report.days:
        writer.writerow(_row(report.vehicle, d.date.isoformat(), report.timezone, d.complete, d))
    complete = all(d.complete for d in report.days) and report.pending_days == 0
    writer.writerow(_row(report.vehicle, "total", report.timezone, complete, report.totals))
    return out.getvalue()
