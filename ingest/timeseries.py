"""Full-rate series and derived metrics for InfluxDB 2.x/3.x (or any server speaking
``/api/v2/write``).

Layout (line protocol). The samples, one point per accepted sample at its own time:

| measurement | tags      | fields                                                          |
| ----------- | --------- | --------------------------------------------------------------- |
| ``gps``     | vehicle   | lat, lon, alt_m, speed_mps, course_deg, fix_mode, quality, sats, hdop |
| ``energy``  | vehicle   | every numeric field of the energy sample (voltage_v, soc_pct, …) |
| ``fridge``  | vehicle   | temp_c, humidity_pct, door_open                                 |
| ``status``  | vehicle   | online, queue_depth                                             |
| ``event``   | vehicle, kind | detail                                                      |

What the ingest derives, one point per record, written in the same transaction as the
record (a record computed again writes its point again: same measurement, tags and time):

| measurement         | tags                         | time                                  |
| ------------------- | ---------------------------- | ------------------------------------- |
| ``visit``           | vehicle, stop                | scheduled arrival                     |
| ``footprint_day``   | vehicle, carrier, factor_set | local midnight starting the day       |
| ``fridge_day``      | vehicle                      | local midnight starting the day       |
| ``fridge_alarm``    | vehicle, kind                | raised: when raised; cleared: run end |
| ``alert``           | vehicle, kind                | raised: condition start; cleared: end |

Fields:

- ``visit``: visit (id), status (early, on_time, late, missed, cancelled, pending), held,
  confirmed, arrival_source (detected, corrected), delay_s (arrival − scheduled),
  departure_delay_s, dwell_s, patients_seen.
- ``footprint_day``: distance_km, traction_l or traction_kwh (by carrier), idling_s,
  idling_l or idling_kwh, idling_measured, aux_drawn_kwh, aux_charged_kwh, solar_kwh,
  ttw_kgco2e, wtt_kgco2e, wtw_kgco2e, factor_set_version, fixes_kept, fixes_rejected,
  complete.
- ``fridge_day``: status (ok, incomplete, no_data, warning, alarm), samples, min_c, max_c,
  in_range_min, above_min, below_min, no_data_min, excursions, heat_alarm, freeze_alarm,
  early_warning, complete.
- ``fridge_alarm`` (kind heat, freeze, early_warning): state (raised, cleared,
  withdrawn), active, alarm_id, peak_c, duration_s, ongoing, cut_by_gap.
- ``alert`` (kind offline, no_gps_fix, low_battery, fridge_*, late_arrival): state
  (raised, cleared), active, alert_id, subject, severity.

Timestamps are in milliseconds, UTC; a figure the record does not hold is left out.
``visit.held`` is true when the visit has an arrival and is neither missed nor cancelled;
a visit's status is as far as the bus's stored fixes tell (it turns missed once fixes
after its window are in). InfluxDB merges the fields of a point written again, so a
figure that is no longer known (a detection withdrawn by late data) keeps its last
value: ``status`` and ``held`` say which visit figures hold, ``samples`` which fridge
figures do. ``footprint_day`` carries its factor set as a tag: days computed with another
set are new points beside the old ones. Fridge alarms and alerts are transitions:
``active`` is true from a raise and false from a clear. When late readings move or
withdraw a fridge alarm, its points at the old times are written again with the alarm's
state at those times, and every point carries the alarm's id.

The points are made by one translator, :mod:`ingest.points`, from the records the
domains hand to the store. Points are first written to a durable buffer in the system
of record, in the same transaction as the samples or records, and a
:class:`TimeseriesForwarder` sends them: an InfluxDB outage delays points, never loses
them. (influxdb-client's own batching mode
keeps points in memory only, so the buffer does the batching and the client's
synchronous write API sends each batch.)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Final, Protocol, cast

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

FORWARD_BATCH: Final = 5000
MAX_BACKOFF_S: Final = 30.0


class InfluxSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="e.g. http://influxdb:8086")
    token: str = ""
    org: str = "medicobus"
    bucket: str = "telemetry"
    timeout_s: float = Field(default=10.0, gt=0)


class TimeseriesBuffer(Protocol):
    """What the forwarder needs from the durable buffer (the store implements it)."""

    def pending_points(self, limit: int) -> list[tuple[int, str]]: ...

    def forget_points(self, up_to_id: int) -> None: ...


class TimeseriesForwarder:
    """A thread that moves points from the durable buffer to the time-series server."""

    def __init__(self, buffer: TimeseriesBuffer, settings: InfluxSettings) -> None:
        self._buffer = buffer
        self._settings = settings
        self._client = InfluxDBClient(
            url=settings.url,
            token=settings.token,
            org=settings.org,
            timeout=int(settings.timeout_s * 1000),
            retries=0,
        )
        self._write = self._client.write_api(write_options=SYNCHRONOUS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="timeseries", daemon=True)
        self.written = 0
        self.failures = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
        self._client.close()

    def forward_once(self) -> int:
        """Send one batch of pending points; return how many were written."""
        rows = self._buffer.pending_points(FORWARD_BATCH)
        if not rows:
            return 0
        self._send(line for _, line in rows)
        self._buffer.forget_points(rows[-1][0])
        self.written += len(rows)
        return len(rows)

    def _send(self, lines: Iterable[str]) -> None:
        self._write.write(
            bucket=self._settings.bucket,
            org=self._settings.org,
            record="\n".join(lines),
            write_precision=cast(WritePrecision, WritePrecision.MS),
        )

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                sent = self.forward_once()
            except Exception as exc:
                self.failures += 1
                log.warning("time-series server unavailable (%s); retrying in %.1f s", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            backoff = 0.5
            if sent < FORWARD_BATCH:
                self._stop.wait(0.5)
