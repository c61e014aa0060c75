"""NMEA 0183 to fixes: line framing, sentence parsing (pynmeagps), epoch assembly.

Pure: bytes and parsed sentences in, :class:`GpsSample` out; no serial port, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

from pynmeagps import VALCKSUM, NMEAParseError, NMEAReader

from edge_agent.counters import DeviceCounters
from protocol.models import GpsSample

MAX_SENTENCE_BYTES: Final = 164  # NMEA allows 82; some receivers (GSV, PUBX) send longer
KNOTS_TO_MPS: Final = 1852.0 / 3600.0
KMH_TO_MPS: Final = 1000.0 / 3600.0


class NmeaFramer:
    """Splits a byte stream into candidate sentences.

    Hand-written because pynmeagps's stream reader stops or hides what it skips; here
    every discarded byte run is counted. A receiver that restarts mid-line leaves a
    fragment before the next ``$``: only the text from the last ``$`` is kept.
    """

    def __init__(self, counters: DeviceCounters) -> None:
        self._buffer = bytearray()
        self._counters = counters

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer.extend(data)
        lines: list[bytes] = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                break
            raw = bytes(self._buffer[:end]).strip(b"\r\n\x00 ")
            del self._buffer[: end + 1]
            if raw:
                sentence = self._clean(raw)
                if sentence is not None:
                    lines.append(sentence)
        if len(self._buffer) > MAX_SENTENCE_BYTES:
            start = self._buffer.rfind(b"$")
            self._counters.add("nmea_garbage")
            del self._buffer[: start if start > 0 else len(self._buffer)]
        return lines

    def _clean(self, raw: bytes) -> bytes | None:
        start = raw.rfind(b"$")
        if start < 0:
            self._counters.add("nmea_garbage")
            return None
        if start > 0:
            self._counters.add("nmea_truncated")
        sentence = raw[start:]
        if len(sentence) > MAX_SENTENCE_BYTES:
            self._counters.add("nmea_garbage")
            return None
        return sentence


def parse_sentence(sentence: bytes, counters: DeviceCounters) -> Any | None:
    """Parse one sentence with its checksum verified; count and drop anything bad."""
    if b"*" not in sentence:
        counters.add("nmea_truncated")
        return None
    try:
        msg = NMEAReader.parse(sentence, validate=VALCKSUM)
    except NMEAParseError as exc:
        counters.add("nmea_bad_checksum" if "checksum" in str(exc) else "nmea_malformed")
        return None
    except (ValueError, IndexError, TypeError, UnicodeDecodeError):
        counters.add("nmea_malformed")
        return None
    if msg is None:
        counters.add("nmea_malformed")
        return None
    counters.add("nmea_sentences")
    return msg


def _num(msg: Any, name: str) -> float | None:
    value = getattr(msg, name, None)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@dataclass
class _Epoch:
    tod: time
    lat: float | None = None
    lon: float | None = None
    alt_m: float | None = None
    speed_mps: float | None = None
    course_deg: float | None = None
    quality: int | None = None
    sats: int | None = None
    hdop: float | None = None
    nav_mode: int | None = None
    valid: bool | None = None
    day: date | None = None
    seen: set[str] = field(default_factory=set)


class EpochAssembler:
    """Builds one fix from the sentences that share an epoch (GGA, RMC, VTG, GSA, GSV).

    Sentences with a time (GGA, RMC, GLL) open a new epoch when the time changes;
    VTG and GSA carry none and belong to the epoch in progress. The date comes from
    RMC (or ZDA) and is carried over midnight for epochs without one.
    """

    def __init__(self, counters: DeviceCounters) -> None:
        self._counters = counters
        self._epoch: _Epoch | None = None
        self._last_day: date | None = None
        self._last_tod: time | None = None

    def feed(self, msg: Any) -> GpsSample | None:
        kind = str(getattr(msg, "msgID", ""))
        tod = getattr(msg, "time", None)
        done: GpsSample | None = None
        if isinstance(tod, time) and kind in ("GGA", "RMC", "GLL", "ZDA"):
            if self._epoch is not None and self._epoch.tod != tod:
                done = self.flush()
            if self._epoch is None:
                self._epoch = _Epoch(tod=tod)
        if self._epoch is None:
            return done
        self._merge(self._epoch, kind, msg)
        return done

    def _merge(self, e: _Epoch, kind: str, msg: Any) -> None:
        e.seen.add(kind)
        if kind == "GGA":
            e.quality = int(_num(msg, "quality") or 0)
            if e.quality > 0:
                e.lat, e.lon = _num(msg, "lat"), _num(msg, "lon")
                e.alt_m = _num(msg, "alt")
            sats = _num(msg, "numSV")
            e.sats = int(sats) if sats is not None else None
            e.hdop = _num(msg, "HDOP")
        elif kind == "RMC":
            e.valid = getattr(msg, "status", "") == "A"
            day = getattr(msg, "date", None)
            if isinstance(day, date):
                e.day = day
            if e.valid:
                e.lat = e.lat if e.lat is not None else _num(msg, "lat")
                e.lon = e.lon if e.lon is not None else _num(msg, "lon")
                knots = _num(msg, "spd")
                if knots is not None:
                    e.speed_mps = knots * KNOTS_TO_MPS
                e.course_deg = _num(msg, "cog")
        elif kind == "ZDA":
            day, month, year = (_num(msg, n) for n in ("day", "month", "year"))
            if day and month and year:
                e.day = date(int(year), int(month), int(day))
        elif kind == "VTG":
            kmh = _num(msg, "sogk")
            if kmh is not None:
                e.speed_mps = kmh * KMH_TO_MPS
            elif (knots := _num(msg, "sogn")) is not None:
                e.speed_mps = knots * KNOTS_TO_MPS
            course = _num(msg, "cogt")
            if course is not None:
                e.course_deg = course
        elif kind == "GSA":
            mode = _num(msg, "navMode")
            if mode in (1.0, 2.0, 3.0):
                e.nav_mode = int(mode)
            e.hdop = e.hdop if e.hdop is not None else _num(msg, "HDOP")

    def _epoch_day(self, e: _Epoch) -> date | None:
        if e.day is not None:
            return e.day
        if self._last_day is None:
            return None
        if self._last_tod is not None and e.tod < self._last_tod:
            # Time of day went back without a new date: midnight passed.
            return self._last_day + timedelta(days=1)
        return self._last_day

    def flush(self) -> GpsSample | None:
        """Close the epoch in progress and return its fix, if it has one."""
        e, self._epoch = self._epoch, None
        if e is None:
            return None
        day = self._epoch_day(e)
        if day is not None:
            self._last_day, self._last_tod = day, e.tod
        no_fix = e.valid is False or e.quality == 0 or e.nav_mode == 1
        if no_fix or e.lat is None or e.lon is None:
            self._counters.add("gps_no_fix")
            return None
        if day is None:
            self._counters.add("gps_no_date")
            return None
        mode = e.nav_mode or (3 if e.alt_m is not None else 2)
        course = e.course_deg % 360.0 if e.course_deg is not None else None
        t = datetime.combine(day, e.tod.replace(tzinfo=None), tzinfo=UTC)
        try:
            fix = GpsSample(
                t=t,
                lat=e.lat,
                lon=e.lon,
                alt_m=e.alt_m,
                speed_mps=e.speed_mps,
                course_deg=course,
                fix_mode=3 if mode == 3 else 2,
                quality=e.quality if e.quality is not None else 1,
                sats=e.sats,
                hdop=e.hdop,
            )
        except ValueError:
            self._counters.add("gps_implausible")
            return None
        self._counters.add("gps_fixes")
        return fix
