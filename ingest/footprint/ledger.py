"""One vehicle's footprint for one local day, from its stored samples, into the store.

Distance from the day's filtered fixes (with an hour before midnight, so the step that
crosses it is counted on the day it ends); traction from distance and the vehicle's
consumption, or the fuel the engine measured (OBD-II) where its readings cover the day's
driving; idling from rest (fixes) and the engine's on/off events; auxiliary energy
and solar from the battery monitor's and the charger's readings; CO₂e with the chosen
factor set, whose name and date are stored with every figure.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from ingest.footprint import storage
from ingest.footprint.day import day_footprint
from ingest.footprint.distance import FixFilterConfig, filter_fixes
from ingest.footprint.emissions import FactorSet
from ingest.footprint.energy import (
    IdlingConfig,
    TractionProfile,
    auxiliary_energy,
    engine_on_intervals,
    measured_fuel,
    rest_intervals,
    solar_yield,
    solar_yield_from_counter,
)
from ingest.local_days import LocalDay
from ingest.store import Store

# Fixes before midnight loaded with a day: enough for the first step and for the fix
# filter to judge the first fixes against what came before.
LEAD_IN: Final = timedelta(hours=1)
# Readings further apart are a gap in the battery's record, not integrated.
ENERGY_MAX_GAP: Final = timedelta(minutes=5)
# Fuel rates further apart are a gap (engine off, adapter unplugged), not integrated.
FUEL_MAX_GAP: Final = timedelta(seconds=30)


class FootprintRecorder:
    def __init__(
        self,
        store: Store,
        *,
        profiles: Callable[[str], TractionProfile],
        factors: FactorSet,
        idling: IdlingConfig,
        zone: ZoneInfo,
        fix_filter: FixFilterConfig | None = None,
    ) -> None:
        self._store = store
        self._profiles = profiles
        self._factors = factors
        self._idling = idling
        self._zone = zone
        self._fix_filter = fix_filter or FixFilterConfig()

    def record_day(self, vehicle: str, day: date, now: datetime, basis: str) -> None:
        local = LocalDay.of(day, self._zone)
        profile = self._profiles(vehicle)
        with self._store.engine.begin() as conn:
            fixes = storage.fixes(conn, vehicle, local.start - LEAD_IN, local.end)
            samples = storage.energy(
                conn, vehicle, local.start - ENERGY_MAX_GAP, local.end + ENERGY_MAX_GAP
            )
            in_day = [f for f in fixes if f.t >= local.start] + [
                s for s in samples if local.start <= s.t < local.end
            ]
            if not in_day:
                storage.forget_day(conn, vehicle, day)
                return
            complete = now >= local.end
            observed_until = local.end if complete else min(local.end, now)
            track = filter_fixes(fixes, self._fix_filter)
            flags = storage.engine_flags(conn, vehicle, local.start, local.end)
            measured = storage.has_engine_flags(conn, vehicle, local.end)
            fuel = measured_fuel(
                storage.fuel_rates(conn, vehicle, local.start - FUEL_MAX_GAP, local.end),
                max_gap=FUEL_MAX_GAP,
                start=local.start,
                end=observed_until,
            )
            footprint = day_footprint(
                vehicle,
                local,
                track,
                profile,
                self._factors,
                rest=rest_intervals(track.fixes),
                engine_on=engine_on_intervals(flags, until=observed_until),
                idling_config=self._idling,
                measured=fuel,
            )
            battery = [s for s in samples if s.source != "mppt"]
            aux = auxiliary_energy(
                battery, max_gap=ENERGY_MAX_GAP, start=local.start, end=observed_until
            )
            charger = [s for s in samples if s.source == "mppt" or s.pv_power_w is not None]
            counter = [s for s in charger if s.yield_today_kwh is not None]
            solar_kwh: float | None = None
            solar_method: str | None = None
            if counter:
                baseline = storage.last_charger_reading_before(conn, vehicle, local.start)
                within = [s for s in counter if local.start <= s.t < local.end]
                if within:
                    solar_kwh = solar_yield_from_counter(
                        ([baseline] if baseline is not None else []) + within
                    )
                    solar_method = "counter"
            elif charger:
                solar_kwh = solar_yield(
                    charger, max_gap=ENERGY_MAX_GAP, start=local.start, end=observed_until
                ).kwh
                solar_method = "power"
            ref = footprint.emissions.factor_set
            storage.save_day(
                conn,
                {
                    "vehicle": vehicle,
                    "day": day,
                    "zone": self._zone.key,
                    "distance_km": footprint.distance_km,
                    "fixes_kept": sum(1 for f in track.fixes if f.t >= local.start),
                    "fixes_rejected": sum(1 for r in track.rejected if r.fix.t >= local.start),
                    "traction_carrier": footprint.traction.carrier,
                    "traction_quantity": footprint.traction.quantity,
                    "idling_measured": measured,
                    "idling_s": footprint.idling.duration.total_seconds(),
                    "idling_quantity": footprint.idling.fuel.quantity,
                    "idling_rate_per_h": footprint.idling.rate_per_h,
                    "idling_source": footprint.idling.source,
                    "aux_drawn_kwh": aux.drawn_kwh,
                    "aux_charged_kwh": aux.charged_kwh,
                    "aux_integrated_s": aux.integrated.total_seconds(),
                    "aux_gap_s": sum(g.duration.total_seconds() for g in aux.gaps),
                    "solar_kwh": solar_kwh,
                    "solar_method": solar_method,
                    "fuel_source": footprint.fuel_source,
                    "measured_fuel_l": footprint.measured_fuel_l,
                    "measured_coverage": footprint.measured_coverage,
                    "ttw_kgco2e": footprint.emissions.ttw_kgco2e,
                    "wtt_kgco2e": footprint.emissions.wtt_kgco2e,
                    "factor_set_id": ref.id,
                    "factor_set_version": ref.version,
                    "factor_set_date": ref.date,
                    "factor_set_source": ref.source,
                    "complete": complete,
                    "basis": basis,
                    "computed_at": now,
                },
            )

    def data_span(self, vehicle: str) -> tuple[datetime, datetime] | None:
        with self._store.engine.connect() as conn:
            return storage.data_span(conn, vehicle)

    def unfinished_days(self, before: date) -> list[tuple[str, date]]:
        with self._store.engine.connect() as conn:
            return storage.incomplete_days(conn, before)
