"""NMEA 0183 to fixes: line framing, sentence parsing (pynmeagps), epoch assembly.

Pure: bytes and parsed sentences in, :class:`GpsSample` out; no serial port, no clock.
Checked epoch by epoch against what gpsd reported for real receivers' captures
(tests/edge_agent/test_nmea_captures.py).
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
# Receivers send 99.99 (or 99.0) for a dilution of precision they could not compute.
INVALID_DOP: Final = 99.0
# Sentences that carry the epoch's time of day and so can open an epoch.
TIMED_SENTENCES: Final = frozenset({"GGA", "RMC", "GLL", "ZDA"})
MERGED_SENTENCES: Final = TIMED_SENTENCES | {"VTG", "GSA"}
# A time of day that goes back by more than this, with no new date, crossed midnight;
# a smaller step back is the receiver correcting itself, not a new day.
MIDNIGHT_JUMP: Final = timedelta(hours=12)


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
    # pynmeagps leaves an empty field as "".
    value = getattr(msg, name, None)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _dop(msg: Any, name: str) -> float | None:
    value = _num(msg, name)
    return value if value is not None and 0 <= value < INVALID_DOP else None


def _says_no_fix(kind: str, msg: Any) -> bool:
    if kind == "GGA":
        return _num(msg, "quality") == 0
    if kind in ("RMC", "GLL"):
        return getattr(msg, "status", "") not in ("A", "D")
    return False


def _position(msg: Any) -> tuple[float, float] | None:
    lat, lon = _num(msg, "lat"), _num(msg, "lon")
    return (lat, lon) if lat is not None and lon is not None else None


@dataclass
class _Epoch:
    """What the sentences of one epoch said, kept per source until the epoch closes."""

    tod: time
    day: date | None = None
    gga_position: tuple[float, float] | None = None
    rmc_position: tuple[float, float] | None = None
    gll_position: tuple[float, float] | None = None
    alt_m: float | None = None
    quality: int | None = None
    sats_by_talker: dict[str, int] = field(default_factory=dict)
    gga_hdop: float | None = None
    gsa_hdop: float | None = None
    gsa_modes: list[int] = field(default_factory=list)
    gsa_used: set[tuple[str, int]] = field(default_factory=set)
    rmc_valid: bool | None = None
    gll_valid: bool | None = None
    rmc_speed_mps: float | None = None
    rmc_course_deg: float | None = None
    vtg_speed_mps: float | None = None
    vtg_course_deg: float | None = None

    def says_no_fix(self) -> bool:
        return (
            self.quality == 0
            or self.rmc_valid is False
            or self.gll_valid is False
            or (bool(self.gsa_modes) and max(self.gsa_modes) == 1)
        )

    def position(self) -> tuple[float, float] | None:
        return self.gga_position or self.rmc_position or self.gll_position

    def sats(self) -> int | None:
        # GGA counts are capped at 12 by some receivers (u-blox in NMEA 4.0/4.10) while
        # their GSA sentences, one per constellation, list every satellite used; and
        # SiRFstarV sends one GGA per constellation (GPGGA, GLGGA), each with its own count.
        gga: int | None = None
        if "GN" in self.sats_by_talker:
            gga = self.sats_by_talker["GN"]
        elif self.sats_by_talker:
            gga = sum(self.sats_by_talker.values())
        if not self.gsa_used:
            return gga
        return max(gga or 0, len(self.gsa_used))

    def fix_mode(self) -> int:
        # GSA states the mode; without it, apply gpsd's rule for GGA: a 3D fix needs an
        # altitude and at least four satellites; a position alone (RMC, GLL) is 2D.
        if self.gsa_modes:
            return max(self.gsa_modes)
        sats = self.sats()
        if self.alt_m is not None and sats is not None and sats >= 4:
            return 3
        return 2


class EpochAssembler:
    """Builds one fix from the sentences that share an epoch (GGA, RMC, GLL, VTG, GSA, ZDA).

    Sentences with a time (GGA, RMC, GLL, ZDA) open a new epoch when the time changes;
    untimed ones (VTG, GSA, GSV) belong to the epoch in progress. An epoch closes when the
    next one opens or on :meth:`flush` (the reader calls it when the line goes quiet).
    The date comes from a valid RMC or from ZDA and is carried forward, over midnight,
    to epochs without one. Any talker is accepted (GP, GN, GL, GA, GB, BD, ...).

    Counters: ``gps_fixes``; ``gps_no_fix`` (the receiver said it has none: GGA quality
    0, RMC or GLL status V, GSA mode 1, or no position at all); ``gps_no_date`` (a fix
    before any RMC or ZDA gave the date); ``gps_implausible`` (values out of range);
    ``nmea_outside_epoch`` (a sentence that belongs to no open epoch, e.g. after a flush).
    """

    def __init__(self, counters: DeviceCounters) -> None:
        self._counters = counters
        self._epoch: _Epoch | None = None
        self._closed_tod: time | None = None
        self._last_day: date | None = None
        self._last_tod: time | None = None
        # Kinds seen in the current run of time-less no-fix sentences ($GPRMC,,V,...).
        self._untimed_no_fix: set[str] = set()

    def feed(self, msg: Any) -> GpsSample | None:
        kind = str(getattr(msg, "msgID", ""))
        tod = getattr(msg, "time", None)
        if kind not in TIMED_SENTENCES or not isinstance(tod, time):
            tod = None
        if kind in TIMED_SENTENCES and tod is None and _says_no_fix(kind, msg):
            self._count_untimed_no_fix(kind)
            return None
        done: GpsSample | None = None
        if tod is not None:
            self._untimed_no_fix.clear()
            if self._epoch is not None and self._epoch.tod != tod:
                done = self.flush()
            if self._epoch is None:
                if tod == self._closed_tod:
                    # That epoch was already closed (by a flush): too late to join it.
                    self._counters.add("nmea_outside_epoch")
                    return done
                self._epoch = _Epoch(tod=tod)
        if self._epoch is None:
            if kind in MERGED_SENTENCES:
                self._counters.add("nmea_outside_epoch")
            return done
        self._merge(self._epoch, kind, msg)
        return done

    def _count_untimed_no_fix(self, kind: str) -> None:
        # Some receivers (Quectel) send no time at all while they have no fix
        # ($GPRMC,,V,...). Count one no-fix epoch per cycle: a cycle starts again when a
        # kind already seen in it comes back.
        if not self._untimed_no_fix or kind in self._untimed_no_fix:
            self._untimed_no_fix.clear()
            self._counters.add("gps_no_fix")
        self._untimed_no_fix.add(kind)

    def _merge(self, e: _Epoch, kind: str, msg: Any) -> None:
        if kind == "GGA":
            self._merge_gga(e, msg)
        elif kind == "RMC":
            e.rmc_valid = not _says_no_fix(kind, msg)
            if e.rmc_valid:
                # Receivers with the navigation warning set send bogus dates (gpsd: MTK3301).
                day = getattr(msg, "date", None)
                if isinstance(day, date):
                    e.day = day
                e.rmc_position = _position(msg)
                knots = _num(msg, "spd")
                e.rmc_speed_mps = knots * KNOTS_TO_MPS if knots is not None else None
                e.rmc_course_deg = _num(msg, "cog")
        elif kind == "GLL":
            e.gll_valid = not _says_no_fix(kind, msg) and getattr(msg, "posMode", "") != "N"
            if e.gll_valid:
                e.gll_position = _position(msg)
        elif kind == "ZDA":
            day, month, year = (_num(msg, n) for n in ("day", "month", "year"))
            if day and month and year:
                try:
                    e.day = date(int(year), int(month), int(day))
                except ValueError:
                    self._counters.add("nmea_malformed")
        elif kind == "VTG":
            # Mode N (not valid) or E (dead reckoning) carries no measured motion.
            if getattr(msg, "posMode", "") in ("N", "E"):
                return
            kmh = _num(msg, "sogk")
            if kmh is not None:
                e.vtg_speed_mps = kmh * KMH_TO_MPS
            elif (knots := _num(msg, "sogn")) is not None:
                e.vtg_speed_mps = knots * KNOTS_TO_MPS
            e.vtg_course_deg = _num(msg, "cogt")
        elif kind == "GSA":
            mode = _num(msg, "navMode")
            if mode in (1.0, 2.0, 3.0):
                e.gsa_modes.append(int(mode))
            if e.gsa_hdop is None:
                e.gsa_hdop = _dop(msg, "HDOP")
            # NMEA 4.10 numbers satellites per constellation (systemId); older talkers
            # keep constellations apart by number ranges.
            system = str(getattr(msg, "systemId", "") or getattr(msg, "talker", ""))
            for i in range(1, 13):
                svid = _num(msg, f"svid_{i:02d}")
                if svid is not None and svid > 0:
                    e.gsa_used.add((system, int(svid)))

    @staticmethod
    def _merge_gga(e: _Epoch, msg: Any) -> None:
        quality = _num(msg, "quality")
        # An empty quality field says nothing (gpsd leaves the status alone too).
        if quality is not None:
            e.quality = int(quality) if e.quality is None else max(e.quality, int(quality))
        sats = _num(msg, "numSV")
        if sats is not None:
            e.sats_by_talker[str(getattr(msg, "talker", ""))] = int(sats)
        if quality != 0 and e.gga_position is None:
            e.gga_position = _position(msg)
            e.alt_m = _num(msg, "alt")
        if e.gga_hdop is None:
            e.gga_hdop = _dop(msg, "HDOP")

    def _epoch_day(self, e: _Epoch) -> date | None:
        if e.day is not None:
            return e.day
        if self._last_day is None:
            return None
        if self._last_tod is not None:
            now = timedelta(hours=e.tod.hour, minutes=e.tod.minute, seconds=e.tod.second)
            before = timedelta(
                hours=self._last_tod.hour,
                minutes=self._last_tod.minute,
                seconds=self._last_tod.second,
            )
            if before - now > MIDNIGHT_JUMP:
                return self._last_day + timedelta(days=1)
        return self._last_day

    def flush(self) -> GpsSample | None:
        """Close the epoch in progress and return its fix, if it has one."""
        e, self._epoch = self._epoch, None
        if e is None:
            return None
        self._closed_tod = e.tod
        day = self._epoch_day(e)
        if day is not None:
            self._last_day, self._last_tod = day, e.tod
        position = e.position()
        if e.says_no_fix() or position is None:
            self._counters.add("gps_no_fix")
            return None
        if day is None:
            self._counters.add("gps_no_date")
            return None
        mode = e.fix_mode()
        speed = e.vtg_speed_mps if e.vtg_speed_mps is not None else e.rmc_speed_mps
        course = e.vtg_course_deg if e.vtg_course_deg is not None else e.rmc_course_deg
        t = datetime.combine(day, e.tod.replace(tzinfo=None), tzinfo=UTC)
        try:
            fix = GpsSample(
                t=t,
                lat=position[0],
                lon=position[1],
                # A 2D fix's altitude is the receiver's assumption, not a measurement.
                alt_m=e.alt_m if mode == 3 else None,
                speed_mps=speed,
                course_deg=course % 360.0 if course is not None else None,
                fix_mode=3 if mode == 3 else 2,
                quality=e.quality if e.quality else 1,
                sats=e.sats(),
                hdop=e.gga_hdop if e.gga_hdop is not None else e.gsa_hdop,
            )
        except ValueError:
            self._counters.add("gps_implausible")
            return None
        self._counters.add("gps_fixes")
        return fix
