"""NMEA 0183 sentences for one GPS epoch, framed and checksummed by pynmeagps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from pynmeagps import GET, NMEAMessage

MPS_TO_KNOTS: Final = 3600.0 / 1852.0
MPS_TO_KMH: Final = 3.6


@dataclass(frozen=True)
class Epoch:
    t: datetime
    lat: float
    lon: float
    speed_mps: float
    course_deg: float
    alt_m: float = 120.0
    sats: int = 9
    hdop: float = 0.9
    fix: bool = True


def _dmm(value: float, degree_digits: int) -> str:
    # The receivers' ddmm.mmmmm layout (5 decimals of minutes: about 2 cm).
    value = abs(value)
    degrees = int(value)
    minutes = round((value - degrees) * 60.0, 5)
    if minutes >= 60.0:
        degrees, minutes = degrees + 1, 0.0
    return f"{degrees:0{degree_digits}d}{minutes:08.5f}"


def _hms(t: datetime) -> str:
    return f"{t:%H%M%S}.{t.microsecond // 10000:02d}"


def epoch_sentences(e: Epoch, talker: str = "GP") -> list[bytes]:
    """RMC, VTG, GGA and GSA for one epoch, in the order a u-blox receiver sends them."""
    hms = _hms(e.t)
    if not e.fix:
        payloads = [
            ("RMC", [hms, "V", "", "", "", "", "", "", f"{e.t:%d%m%y}", "", "", "N", "V"]),
            ("VTG", ["", "T", "", "M", "", "N", "", "K", "N"]),
            ("GGA", [hms, "", "", "", "", "0", "00", "99.99", "", "", "", "", "", ""]),
            ("GSA", ["A", "1", *[""] * 12, "99.99", "99.99", "99.99"]),
        ]
    else:
        lat, ns = _dmm(e.lat, 2), "N" if e.lat >= 0 else "S"
        lon, ew = _dmm(e.lon, 3), "E" if e.lon >= 0 else "W"
        knots = f"{e.speed_mps * MPS_TO_KNOTS:.3f}"
        kmh = f"{e.speed_mps * MPS_TO_KMH:.3f}"
        cog = f"{e.course_deg % 360.0:.2f}" if e.speed_mps > 0.1 else ""
        svids = [f"{n:02d}" for n in (2, 5, 7, 9, 13, 15, 18, 20, 24, 29, 30, 31)[: e.sats]]
        pdop, vdop = e.hdop * 1.6, e.hdop * 1.3
        payloads = [
            ("RMC", [hms, "A", lat, ns, lon, ew, knots, cog, f"{e.t:%d%m%y}", "", "", "A", "V"]),
            ("VTG", [cog, "T", "", "M", knots, "N", kmh, "K", "A"]),
            (
                "GGA",
                [
                    hms,
                    lat,
                    ns,
                    lon,
                    ew,
                    "1",
                    f"{e.sats:02d}",
                    f"{e.hdop:.2f}",
                    f"{e.alt_m:.1f}",
                    "M",
                    "46.0",
                    "M",
                    "",
                    "",
                ],
            ),
            (
                "GSA",
                [
                    "A",
                    "3",
                    *svids,
                    *[""] * (12 - len(svids)),
                    f"{pdop:.2f}",
                    f"{e.hdop:.2f}",
                    f"{vdop:.2f}",
                ],
            ),
        ]
    return [NMEAMessage(talker, msg_id, GET, payload=p).serialize() for msg_id, p in payloads]
