"""NMEA 0183 to fixes: line framing, sentence parsing (pynmeagps), epoch assembly.

Pure: bytes and parsed sentences in, :class:`GpsSample` out; no serial port, and no clock
but the one given for receivers that never send a date.
Checked epoch by epoch against what gpsd reported for real receivers' captures
(tests/edge_agent/test_nmea_captures.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from math import isfinite
from typing import Any, Final, Literal

from pynmeagps import VALCKSUM, NMEAParseError, NMEAReader

from edge_agent.counters import DeviceCounters
from protocol.clock import Clock
from protocol.models import GpsSample

MAX_SENTENCE_BYTES: Final = 164  # NMEA allows 82; some receivers (GSV, PUBX) send longer
KNOTS_TO_MPS: Final = 1852.0 / 3600.0
KMH_TO_MPS: Final = 1000.0 / 3600.0
# Receivers send 99.99 (or 99.0) for a dilution of precision they could not compute, and
# some 0.0: no real constellation gives less than about 0.5.
INVALID_DOP: Final = 99.0
# Sentences that carry the epoch's time of day and so can open an epoch.
TIMED_SENTENCES: Final = frozenset({"GGA", "RMC", "GLL", "GNS", "ZDA"})
# Sentences that speak of the fix; an epoch with none of them (a ZDA alone) only dates.
FIX_SENTENCES: Final = frozenset({"GGA", "RMC", "GLL", "GNS"})
MERGED_SENTENCES: Final = TIMED_SENTENCES | {"VTG", "GSA"}
# A time of day that goes back by more than this, with no new date, crossed midnight;
# a smaller step back is the receiver correcting itself, not a new day.
MIDNIGHT_JUMP: Final = timedelta(hours=12)
# A position needs three satellites (gpsd holds a GGA with fewer as no fix). Beyond an
# HDOP of 20 (a "poor" geometry) the position can be off by hundreds of metres, more than
# a stop's zone.
MIN_SATELLITES: Final = 3
MAX_HDOP: Final = 20.0
# A receiver clock that steps back is waited for: fixes not after the last one published
# are dropped until its time passes that one again, so no time is published twice. One
# that stays behind (its earlier time was the wrong one) is believed again once its
# epochs have run in order for this long of its own time, over at least this many epochs.
CLOCK_RESYNC_AFTER: Final = timedelta(seconds=60)
CLOCK_RESYNC_EPOCHS: Final = 10
# A receiver that has sent no date (RMC, ZDA) in this many epochs is taken never to send
# one, and is dated from the host's clock; before, an epoch may just be the first of a
# cycle that an RMC completes.
HOST_DATE_AFTER_EPOCHS: Final = 10
# FAA mode indicators (NMEA 2.3+ in RMC, GLL and VTG; one per constellation in GNS:
# GPS, GLONASS, Galileo, BeiDou, QZSS, NavIC).
MEASURED_MODES: Final = frozenset("ADPRF")  # autonomous, differential, precise, RTK
ESTIMATED_MODES: Final = frozenset("EMS")  # dead reckoning, manual input, simulator
# The GGA quality each mode stands for, for epochs without a GGA.
QUALITY_OF_MODE: Final = {"A": 1, "D": 2, "P": 3, "R": 4, "F": 5, "E": 6, "M": 7, "S": 8}
ESTIMATED_QUALITIES: Final = frozenset({6, 7, 8})

# What a sentence says of the fix: none, a position not measured (dead reckoning, typed
# in, simulated), or a measured one.
FixWord = Literal["none", "estimated", "measured"]
_WORD_RANK: Final[dict[FixWord, int]] = {"none": 0, "estimated": 1, "measured": 2}


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
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if isfinite(number) else None


def _dop(msg: Any, name: str) -> float | None:
    value = _num(msg, name)
    return value if value is not None and 0 < value < INVALID_DOP else None


def _mode_word(modes: str) -> FixWord:
    if any(m in MEASURED_MODES for m in modes):
        return "measured"
    if any(m in ESTIMATED_MODES for m in modes):
        return "estimated"
    return "none"


def _fix_word(kind: str, msg: Any) -> FixWord | None:
    """What one sentence says of the fix; None when it says nothing (an empty field)."""
    if kind == "GGA":
        quality = _num(msg, "quality")
        if quality is None:
            return None  # gpsd leaves the status alone too
        if quality == 0:
            return "none"
        return "estimated" if int(quality) in ESTIMATED_QUALITIES else "measured"
    if kind in ("RMC", "GLL"):
        if getattr(msg, "status", "") not in ("A", "D"):
            return "none"
        # Before NMEA 2.3 there is no mode: the status alone tells.
        mode = str(getattr(msg, "posMode", "") or "")
        return _mode_word(mode) if mode else "measured"
    if kind == "GNS":
        # Navigational status (NMEA 4.1): U is unsafe; V only says there is no status.
        if getattr(msg, "navStatus", "") == "U":
            return "none"
        return _mode_word(str(getattr(msg, "posMode", "") or ""))
    return None


def _best(a: FixWord | None, b: FixWord | None) -> FixWord | None:
    # Sentences of one kind from several talkers (a GGA per constellation): the best wins.
    if a is None or b is None:
        return a or b
    return a if _WORD_RANK[a] >= _WORD_RANK[b] else b


def _position(msg: Any) -> tuple[float, float] | None:
    lat, lon = _num(msg, "lat"), _num(msg, "lon")
    return (lat, lon) if lat is not None and lon is not None else None


def _seconds(tod: time) -> float:
    return tod.hour * 3600 + tod.minute * 60 + tod.second + tod.microsecond / 1e6


def _satellites(by_talker: dict[str, int]) -> int:
    # GN is the receiver's total; per-constellation talkers (SiRFstarV's GPGGA and GLGGA,
    # NMEA 4's GPGNS and GLGNS) each count their own.
    return by_talker["GN"] if "GN" in by_talker else sum(by_talker.values())


@dataclass
class _Epoch:
    """What the sentences of one epoch said, kept per source until the epoch closes."""

    tod: time
    day: date | None = None
    # Per sentence kind: the first position, altitude, HDOP each gave, and satellites
    # counted per talker.
    positions: dict[str, tuple[float, float]] = field(default_factory=dict)
    altitudes: dict[str, float] = field(default_factory=dict)
    hdops: dict[str, float] = field(default_factory=dict)
    sats_by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    # Sentence kinds that speak of the fix, with what they said (None: nothing).
    words: dict[str, FixWord | None] = field(default_factory=dict)
    gga_quality: int | None = None
    modes: str = ""  # FAA mode indicators of RMC, GLL and GNS
    gsa_modes: list[int] = field(default_factory=list)
    gsa_used: set[tuple[str, int]] = field(default_factory=set)
    rmc_speed_mps: float | None = None
    rmc_course_deg: float | None = None
    vtg_speed_mps: float | None = None
    vtg_course_deg: float | None = None

    def hear(self, kind: str, word: FixWord | None) -> None:
        self.words[kind] = _best(self.words.get(kind), word)

    def fix_word(self) -> FixWord:
        """Any sentence saying no fix wins, then any saying the position is estimated."""
        words = {w for w in self.words.values() if w is not None}
        if "none" in words or (self.gsa_modes and max(self.gsa_modes) == 1):
            return "none"
        return "estimated" if "estimated" in words else "measured"

    def position(self) -> tuple[float, float] | None:
        for kind in ("GGA", "GNS", "RMC", "GLL"):
            if kind in self.positions:
                return self.positions[kind]
        return None

    def altitude(self) -> float | None:
        return self.altitudes.get("GGA", self.altitudes.get("GNS"))

    def hdop(self) -> float | None:
        for kind in ("GGA", "GNS", "GSA"):
            if kind in self.hdops:
                return self.hdops[kind]
        return None

    def sats(self) -> int | None:
        # GGA counts are capped at 12 by some receivers (u-blox in NMEA 4.0/4.10) while
        # their GSA sentences, one per constellation, list every satellite used.
        counts = [_satellites(by_talker) for by_talker in self.sats_by_kind.values()]
        reported = max(counts) if counts else None
        if not self.gsa_used:
            return reported
        return max(reported or 0, len(self.gsa_used))

    def quality(self) -> int:
        if self.gga_quality:
            return self.gga_quality
        measured = [QUALITY_OF_MODE[m] for m in self.modes if m in MEASURED_MODES]
        return max(measured, default=1)

    def fix_mode(self) -> int:
        # GSA states the mode; without it, apply gpsd's rule for GGA and GNS: a 3D fix
        # needs an altitude and at least four satellites; a position alone is 2D.
        if self.gsa_modes:
            return max(self.gsa_modes)
        sats = self.sats()
        if self.altitude() is not None and sats is not None and sats >= 4:
            return 3
        return 2


class EpochAssembler:
    """Builds one fix from the sentences that share an epoch (GGA, GNS, RMC, GLL, VTG,
    GSA, ZDA, in any combination and order a receiver sends them).

    Sentences with a time (GGA, GNS, RMC, GLL, ZDA) open a new epoch when the time
    changes; untimed ones (VTG, GSA, GSV) belong to the epoch in progress. An epoch closes
    when the next one opens or on :meth:`flush` (the reader calls it when the line goes
    quiet). The date comes from a valid RMC or from ZDA and is carried forward, over
    midnight, to epochs without one; a receiver that has sent none in its first
    :data:`HOST_DATE_AFTER_EPOCHS` epochs (GGA or GNS alone) is dated from ``clock``, if
    given: the date that puts the epoch nearest to it.
    Any talker is accepted (GP, GN, GL, GA, GB, BD, GQ, ...).

    A fix is published when no sentence of its epoch says there is none, its position
    was measured (not dead reckoning, typed in or simulated), at least
    :data:`MIN_SATELLITES` were used where a count is given, its HDOP, where given, is at
    most :data:`MAX_HDOP`, its values are in range, and its time is after the last
    published fix's (see :data:`CLOCK_RESYNC_AFTER` for a clock that stays behind).

    Counters: ``gps_fixes``; epochs rejected, one reason each: ``gps_no_fix`` (GGA
    quality 0, RMC or GLL status V, a mode N, GSA mode 1, GNS without a fixed
    constellation or unsafe, or no position at all), ``gps_estimated`` (GGA quality 6-8,
    mode E, M or S), ``gps_few_satellites``, ``gps_poor_hdop``, ``gps_no_date`` (before
    any date), ``gps_implausible`` (values out of range, or 0°N 0°E),
    ``gps_time_behind`` (not after the last fix published); ``gps_clock_resync`` (a
    clock that stayed behind believed again), ``gps_dated_by_host``;
    ``nmea_outside_epoch`` (a sentence that belongs to no open epoch, e.g. after a flush).
    """

    def __init__(self, counters: DeviceCounters, clock: Clock | None = None) -> None:
        self._counters = counters
        self._clock = clock
        self._epoch: _Epoch | None = None
        self._closed_tod: time | None = None
        # The receiver's own date, carried forward from its last RMC or ZDA.
        self._last_day: date | None = None
        self._last_tod: time | None = None
        self._undated_epochs = 0
        # Kinds seen in the current run of time-less no-fix sentences ($GPRMC,,V,...).
        self._untimed_no_fix: set[str] = set()
        self._last_published: datetime | None = None
        # Epochs behind the last published fix, in order: (first, last, how many).
        self._behind: tuple[datetime, datetime, int] | None = None

    def feed(self, msg: Any) -> GpsSample | None:
        kind = str(getattr(msg, "msgID", ""))
        tod = getattr(msg, "time", None)
        if kind not in TIMED_SENTENCES or not isinstance(tod, time):
            tod = None
        if kind in TIMED_SENTENCES and tod is None and _fix_word(kind, msg) == "none":
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
        if kind in FIX_SENTENCES:
            word = _fix_word(kind, msg)
            e.hear(kind, word)
            if kind in ("RMC", "GLL", "GNS"):
                e.modes += str(getattr(msg, "posMode", "") or "")
            if word != "none" and kind not in e.positions:
                position = _position(msg)
                if position is not None:
                    e.positions[kind] = position
                    # The altitude of the sentence whose position is kept.
                    if kind in ("GGA", "GNS") and (alt := _num(msg, "alt")) is not None:
                        e.altitudes[kind] = alt
        if kind in ("GGA", "GNS"):
            self._merge_gga_gns(e, kind, msg)
        elif kind == "RMC":
            if e.words.get("RMC") != "none":
                # Receivers with the navigation warning set send bogus dates (gpsd: MTK3301).
                day = getattr(msg, "date", None)
                if isinstance(day, date):
                    e.day = day
                knots = _num(msg, "spd")
                e.rmc_speed_mps = knots * KNOTS_TO_MPS if knots is not None else None
                e.rmc_course_deg = _num(msg, "cog")
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
            if (hdop := _dop(msg, "HDOP")) is not None:
                e.hdops.setdefault("GSA", hdop)
            # NMEA 4.10 numbers satellites per constellation (systemId); older talkers
            # keep constellations apart by number ranges.
            system = str(getattr(msg, "systemId", "") or getattr(msg, "talker", ""))
            for i in range(1, 13):
                svid = _num(msg, f"svid_{i:02d}")
                if svid is not None and svid > 0:
                    e.gsa_used.add((system, int(svid)))

    @staticmethod
    def _merge_gga_gns(e: _Epoch, kind: str, msg: Any) -> None:
        if kind == "GGA" and (quality := _num(msg, "quality")) is not None:
            e.gga_quality = (
                int(quality) if e.gga_quality is None else max(e.gga_quality, int(quality))
            )
        sats = _num(msg, "numSV")
        if sats is not None:
            e.sats_by_kind.setdefault(kind, {})[str(getattr(msg, "talker", ""))] = int(sats)
        if kind not in e.hdops and (hdop := _dop(msg, "HDOP")) is not None:
            e.hdops[kind] = hdop

    def _epoch_day(self, e: _Epoch) -> date | None:
        if e.day is not None:
            return e.day
        if self._last_day is not None and self._last_tod is not None:
            step = _seconds(e.tod) - _seconds(self._last_tod)
            if step < -MIDNIGHT_JUMP.total_seconds():
                return self._last_day + timedelta(days=1)
            if step > MIDNIGHT_JUMP.total_seconds():
                # Back over midnight: a clock that stepped back, or a late epoch.
                return self._last_day - timedelta(days=1)
            return self._last_day
        self._undated_epochs += 1
        if self._clock is not None and self._undated_epochs > HOST_DATE_AFTER_EPOCHS:
            now = self._clock.now().astimezone(UTC)
            nearest = min(
                (now.date() + timedelta(days=d) for d in (-1, 0, 1)),
                key=lambda d: abs(datetime.combine(d, e.tod.replace(tzinfo=None), UTC) - now),
            )
            self._counters.add("gps_dated_by_host")
            return nearest
        return None

    def flush(self) -> GpsSample | None:
        """Close the epoch in progress and return its fix, if it has one."""
        e, self._epoch = self._epoch, None
        if e is None:
            return None
        self._closed_tod = e.tod
        receiver_day = e.day is not None or self._last_day is not None
        day = self._epoch_day(e)
        if day is not None and receiver_day:
            self._last_day, self._last_tod = day, e.tod
        if not e.words:
            return None  # a date alone (ZDA)
        fix = self._fix(e, day)
        if fix is not None and self._in_order(fix.t):
            self._last_published = fix.t
            self._counters.add("gps_fixes")
            return fix
        return None

    def _fix(self, e: _Epoch, day: date | None) -> GpsSample | None:
        position = e.position()
        word = e.fix_word()
        if word == "none" or position is None:
            self._counters.add("gps_no_fix")
            return None
        if word == "estimated":
            self._counters.add("gps_estimated")
            return None
        sats, hdop = e.sats(), e.hdop()
        if sats is not None and sats < MIN_SATELLITES:
            self._counters.add("gps_few_satellites")
            return None
        if hdop is not None and hdop > MAX_HDOP:
            self._counters.add("gps_poor_hdop")
            return None
        if day is None:
            self._counters.add("gps_no_date")
            return None
        if position == (0.0, 0.0):
            # A receiver that has no position yet but says it has one (after a cold start).
            self._counters.add("gps_implausible")
            return None
        mode = e.fix_mode()
        speed = e.vtg_speed_mps if e.vtg_speed_mps is not None else e.rmc_speed_mps
        course = e.vtg_course_deg if e.vtg_course_deg is not None else e.rmc_course_deg
        try:
            return GpsSample(
                t=datetime.combine(day, e.tod.replace(tzinfo=None), tzinfo=UTC),
                lat=position[0],
                lon=position[1],
                # A 2D fix's altitude is the receiver's assumption, not a measurement.
                alt_m=e.altitude() if mode == 3 else None,
                speed_mps=speed,
                course_deg=course % 360.0 if course is not None else None,
                fix_mode=3 if mode == 3 else 2,
                quality=e.quality(),
                sats=sats,
                hdop=hdop,
            )
        except ValueError:
            self._counters.add("gps_implausible")
            return None

    def _in_order(self, t: datetime) -> bool:
        last = self._last_published
        if last is None or t > last:
            self._behind = None
            return True
        run = self._behind
        # A run of epochs behind starts again when one goes back within it.
        run = (t, t, 1) if run is None or t <= run[1] else (run[0], t, run[2] + 1)
        if run[1] - run[0] >= CLOCK_RESYNC_AFTER and run[2] >= CLOCK_RESYNC_EPOCHS:
            self._behind = None
            self._counters.add("gps_clock_resync")
            return True
        self._behind = run
        self._counters.add("gps_time_behind")
        return False
