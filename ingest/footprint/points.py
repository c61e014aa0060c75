"""A vehicle-day's footprint as a time-series point."""

from __future__ import annotations

from typing import Final

from influxdb_client.client.write.point import Point

from ingest.footprint.energy import CARRIER_UNIT
from ingest.footprint.records import StoredFootprintDay
from ingest.timeseries import day_start, line_at

_UNIT_SUFFIX: Final = {"L": "l", "kWh": "kwh"}


def footprint_day_line(day: StoredFootprintDay) -> str:
    """The point of one vehicle-day's footprint (pure)."""
    unit = _UNIT_SUFFIX[CARRIER_UNIT[day.traction_carrier]]
    point = (
        Point("footprint_day")
        .tag("vehicle", day.vehicle)
        .tag("carrier", day.traction_carrier)
        .tag("factor_set", day.factor_set.id)
    )
    point.field("distance_km", float(day.distance_km))
    point.field(f"traction_{unit}", float(day.traction_quantity))
    point.field("idling_s", day.idling.total_seconds())
    point.field(f"idling_{unit}", float(day.idling_quantity))
    point.field("idling_measured", day.idling_measured)
    point.field("aux_drawn_kwh", float(day.aux_drawn_kwh))
    point.field("aux_charged_kwh", float(day.aux_charged_kwh))
    if day.solar_kwh is not None:
        point.field("solar_kwh", float(day.solar_kwh))
    point.field("ttw_kgco2e", float(day.ttw_kgco2e))
    point.field("wtt_kgco2e", float(day.wtt_kgco2e))
    point.field("wtw_kgco2e", float(day.wtw_kgco2e))
    point.field("factor_set_version", day.factor_set.version)
    point.field("fixes_kept", int(day.fixes_kept))
    point.field("fixes_rejected", int(day.fixes_rejected))
    point.field("complete", day.complete)
    return line_at(point, day_start(day.day, day.zone))
