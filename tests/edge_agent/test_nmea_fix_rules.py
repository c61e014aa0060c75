"""GNS decoding, any mix of sentences and talkers, what a published fix needs, and time
that goes backwards.

Sentences are built by pynmeagps (correct checksums) or taken from a real capture
(u-blox NEO-M9N, tests/data/nmea) and rewritten as another receiver would send them.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

import pytest
from pynmeagps import NMEAReader

from edge_agent.counters import DeviceCounters
from edge_agent.gps_reader import GpsReader
from edge_agent.nmea import (
    CLOCK_RESYNC_AFTER,
    CLOCK_RESYNC_EPOCHS,
    HOST_DATE_AFTER_EPOCHS,
    MAX_HDOP,
    EpochAssembler,
    NmeaFramer,
    parse_sentence,
)
from firmware_config.agent import GpsPortConfig
from protocol.clock import ManualClock
from protocol.models import GpsSample
from simulators.serial_port import VirtualSerialPort
from tests.edge_agent.test_nmea import LAT, LON, T0, gga, gsa, nmea, rmc, run
from tests.edge_agent.test_nmea_captures import (
    capture_bytes,
    read_gpsd_report,
    replay,
)
from tests.support.wait import wait_for

S = timedelta(seconds=1)
M9N = "ublox-neo-m9n-nmea.log"
REJECTIONS = (
    "gps_no_fix",
    "gps_estimated",
    "gps_few_satellites",
    "gps_poor_hdop",
    "gps_no_date",
    "gps_implausible",
    "gps_time_behind",
)


def rejected(counters: DeviceCounters) -> dict[str, int]:
    return {k: v for k in REJECTIONS if (v := counters.get(k))}


def hms(t: datetime) -> str:
    return f"{t:%H%M%S}.{t.microsecond // 10000:02d}"


def gns(
    hms_: str,
    *,
    modes: str = "AANN",
    sats: str = "10",
    hdop: str = "0.9",
    alt: str = "120.0",
    talker: str = "GN",
    nav_status: str = "V",
    position: tuple[str, ...] = (*LAT, *LON),
) -> bytes:
    # u-blox sends navStatus V: "no navigational status", not "invalid".
    return nmea(talker, "GNS", hms_, *position, modes, sats, hdop, alt, "46.0", "", "", nav_status)


def gga_hdop(hms_: str, hdop: str, sats: str = "09") -> bytes:
    return nmea("GP", "GGA", hms_, *LAT, *LON, "1", sats, hdop, "120.0", "M", "", "M", "", "")


def gll(hms_: str, status: str = "A", mode: str = "A", talker: str = "GN") -> bytes:
    return nmea(talker, "GLL", *LAT, *LON, hms_, status, mode)


def zda(t: datetime, talker: str = "GN") -> bytes:
    return nmea(talker, "ZDA", hms(t), f"{t:%d}", f"{t:%m}", f"{t:%Y}", "00", "00")


def vtg(talker: str = "GN", mode: str = "A") -> bytes:
    return nmea(talker, "VTG", "90.0", "T", "", "M", "1.000", "N", "1.852", "K", mode)


# --- GNS ---------------------------------------------------------------------------------


def m9n_rewritten(kinds: Sequence[str]) -> bytes:
    """The NEO-M9N capture as a receiver sending only ``kinds`` would have sent it, its
    GGA rewritten as GNS: each constellation's mode is the RMC's where that
    constellation's GSA lists satellites, N where it lists none."""
    lines = capture_bytes(M9N).splitlines()
    parsed = [NMEAReader.parse(line) for line in lines]
    used: dict[time, set[int]] = {}
    rmc_mode: dict[time, str] = {}
    tod: time | None = None
    for m in parsed:
        if m.msgID in ("RMC", "GGA", "GLL", "ZDA") and isinstance(m.time, time):
            tod = m.time
        if m.msgID == "RMC":
            rmc_mode[m.time] = m.posMode
        if m.msgID == "GSA" and tod is not None and getattr(m, "svid_01", "") != "":
            used.setdefault(tod, set()).add(int(m.systemId))
    out: list[bytes] = []
    for line, m in zip(lines, parsed, strict=True):
        if m.msgID == "GGA" and "GNS" in kinds:
            raw = line.decode().split("*")[0].split(",")
            modes = "".join(rmc_mode[m.time] if s in used[m.time] else "N" for s in (1, 2, 3, 4))
            # GGA: time, lat, N, lon, W, quality, sats, hdop, alt, M, sep, M, age, station
            out.append(
                nmea("GN", "GNS", *raw[1:6], modes, *raw[7:10], raw[11], "", "", "V").rstrip()
            )
        elif m.msgID in kinds:
            out.append(line)
    return b"\r\n".join(out) + b"\r\n"


def test_gns_with_gll_and_zda_gives_the_3d_fixes_gga_gave() -> None:
    counters = DeviceCounters()
    fixes = run(m9n_rewritten(["GNS", "GLL", "ZDA"]), counters)
    original = replay(M9N)
    expected = [*original.fixes, original.trailing]
    gpsd = read_gpsd_report(M9N)
    assert len(fixes) == len(expected) == 61
    for ours, theirs in zip(fixes, expected, strict=True):
        assert theirs is not None
        assert (ours.t, ours.lat, ours.lon, ours.fix_mode) == (
            theirs.t,
            theirs.lat,
            theirs.lon,
            3,
        )
        assert ours.alt_m == theirs.alt_m  # GGA's altitude, now from GNS
        assert ours.hdop == theirs.hdop
        assert ours.sats == 12  # GNS's count (u-blox caps it at 12 as in GGA)
        assert ours.quality == 2  # mode D: differential
        if ours.t in gpsd.fixes:
            assert ours.alt_m == pytest.approx(gpsd.fixes[ours.t]["altMSL"])
    assert rejected(counters) == {}


def test_gns_alone_is_dated_by_the_host_clock_once_the_receiver_proves_dateless() -> None:
    data = m9n_rewritten(["GNS"])
    undated = DeviceCounters()
    assert run(data, undated) == []
    assert rejected(undated) == {"gps_no_date": 61}

    counters = DeviceCounters()
    # The host's clock runs a little ahead, as a clock kept by NTP may be on a bus.
    clock = ManualClock(datetime(2020, 7, 11, 22, 40, tzinfo=UTC))
    framer, assembler = NmeaFramer(counters), EpochAssembler(counters, clock)
    fixes = []
    for sentence in framer.feed(data):
        msg = parse_sentence(sentence, counters)
        if msg is not None and (fix := assembler.feed(msg)) is not None:
            fixes.append(fix)
    if (last := assembler.flush()) is not None:
        fixes.append(last)
    original = replay(M9N)
    expected = [f for f in [*original.fixes, original.trailing] if f is not None]
    assert [(f.t, f.lat, f.lon, f.alt_m) for f in fixes] == [
        (f.t, f.lat, f.lon, f.alt_m) for f in expected[HOST_DATE_AFTER_EPOCHS:]
    ]
    assert rejected(counters) == {"gps_no_date": HOST_DATE_AFTER_EPOCHS}
    assert counters.get("gps_dated_by_host") == 61 - HOST_DATE_AFTER_EPOCHS


def test_host_clock_dates_an_epoch_just_after_midnight_on_the_next_day() -> None:
    counters = DeviceCounters()
    clock = ManualClock(datetime(2026, 11, 23, 23, 59, 58, tzinfo=UTC))
    assembler = EpochAssembler(counters, clock)
    start = datetime(2026, 11, 23, 23, 59, 50, tzinfo=UTC)
    fixes = []
    for i in range(HOST_DATE_AFTER_EPOCHS + 3):
        t = start + i * S
        msg = NMEAReader.parse(gns(hms(t)))
        if (fix := assembler.feed(msg)) is not None:
            fixes.append(fix)
    if (last := assembler.flush()) is not None:
        fixes.append(last)
    assert [f.t for f in fixes] == [
        start + i * S for i in range(HOST_DATE_AFTER_EPOCHS, HOST_DATE_AFTER_EPOCHS + 3)
    ]
    assert fixes[-1].t.date() == date(2026, 11, 24)


@pytest.mark.parametrize(
    ("sentences", "reason"),
    [
        ([gns("093015.00", modes="NNNN")], "gps_no_fix"),
        ([gns("093015.00", modes="")], "gps_no_fix"),
        ([gns("093015.00", modes="N", talker="GP")], "gps_no_fix"),
        ([gns("093015.00", nav_status="U")], "gps_no_fix"),
        ([gns("093015.00", modes="EENN")], "gps_estimated"),
        ([gns("093015.00", modes="S")], "gps_estimated"),
        ([gns("093015.00", sats="02")], "gps_few_satellites"),
        ([gns("093015.00", hdop="35.0")], "gps_poor_hdop"),
        ([gns("093015.00", alt="25000.0")], "gps_implausible"),
    ],
    ids=["all-N", "no-mode", "GPGNS-N", "unsafe", "dead-reckoning", "simulator", "2-sats",
         "hdop-35", "altitude-25-km"],
)  # fmt: skip
def test_gns_that_is_not_a_usable_fix(sentences: list[bytes], reason: str) -> None:
    counters = DeviceCounters()
    assert run(rmc("093015.00") + b"".join(sentences), counters) == []
    assert rejected(counters) == {reason: 1}


@pytest.mark.parametrize("modes", ["ANNN", "NANN", "NNAN", "NNNA", "NNNNA", "D", "R", "F", "P"])
def test_one_constellation_with_a_fix_is_a_fix(modes: str) -> None:
    (fix,) = run(rmc("093015.00") + gns("093015.00", modes=modes, talker="GN"))
    assert fix.fix_mode == 3
    assert fix.alt_m == pytest.approx(120.0)
    assert fix.quality == {"A": 1, "D": 2, "P": 3, "R": 4, "F": 5}[modes.strip("N")]


def test_gns_per_constellation_counts_add_up_unless_the_receiver_gives_the_total() -> None:
    per_system = gns("093015.00", modes="A", sats="07", talker="GP") + gns(
        "093015.00", modes="A", sats="04", talker="GL"
    )
    assert run(rmc("093015.00") + per_system)[0].sats == 11
    with_total = gns("093015.00", modes="AA", sats="11") + per_system
    assert run(rmc("093015.00") + with_total)[0].sats == 11


def test_time_less_gns_without_fix_counts_one_no_fix_per_cycle() -> None:
    cycle = gns("", modes="NNNN", sats="00", hdop="99.99", alt="", position=("",) * 4)
    cycle += nmea("GN", "RMC", "", "V", *[""] * 9, "N", "V")
    counters = DeviceCounters()
    assert run(cycle * 4, counters) == []
    assert rejected(counters) == {"gps_no_fix": 4}


# --- any mix of sentences and talkers ------------------------------------------------------

FIX_KINDS = ("RMC", "GGA", "GNS", "GLL")
TALKERS = ("GP", "GN", "GL", "GA", "BD", "GB", "GQ")


def mixed_epoch(t: datetime, kinds: Sequence[str], talker: str, rng: random.Random) -> bytes:
    """One epoch of ``kinds`` in a shuffled order that starts with a timed sentence."""
    by_kind = {
        "RMC": nmea(talker, "RMC", hms(t), "A", *LAT, *LON, "1.0", "90.0", f"{t:%d%m%y}", "", "",
                    "A", "V"),
        "GGA": gga(hms(t), talker=talker),
        "GNS": gns(hms(t), modes="AA", sats="09", talker=talker),
        "GLL": gll(hms(t), talker=talker),
        "ZDA": zda(t, talker=talker),
        "VTG": vtg(talker=talker),
        "GSA": gsa("3", *(f"{n:02d}" for n in range(1, 10)), talker=talker),
    }  # fmt: skip
    timed = [k for k in kinds if k in (*FIX_KINDS, "ZDA")]
    rest = [k for k in kinds if k != timed[0]]
    rng.shuffle(rest)
    return b"".join(by_kind[k] for k in [timed[0], *rest])


COMBINATIONS = [
    (*fix_kinds, *extras)
    for n in range(1, 5)
    for fix_kinds in itertools.combinations(FIX_KINDS, n)
    for m in range(4)
    for extras in itertools.combinations(("ZDA", "VTG", "GSA"), m)
]


@pytest.mark.parametrize("kinds", COMBINATIONS, ids="+".join)
def test_every_mix_of_sentences_gives_one_fix_per_epoch(kinds: tuple[str, ...]) -> None:
    rng = random.Random("+".join(kinds))
    talker = rng.choice(TALKERS)
    epochs = 4
    data = b"".join(mixed_epoch(T0 + i * S, kinds, talker, rng) for i in range(epochs))
    counters = DeviceCounters()
    fixes = run(data, counters)
    dated = "RMC" in kinds or "ZDA" in kinds
    if not dated:
        assert fixes == []
        assert rejected(counters) == {"gps_no_date": epochs}
        return
    assert [f.t for f in fixes] == [T0 + i * S for i in range(epochs)], talker
    assert rejected(counters) == {}
    for f in fixes:
        assert f.lat == pytest.approx(49.2411, abs=1e-6)
        assert f.lon == pytest.approx(-1.6333, abs=1e-6)
        with_altitude = "GGA" in kinds or "GNS" in kinds
        assert f.fix_mode == (3 if with_altitude or "GSA" in kinds else 2)
        assert f.alt_m == (pytest.approx(120.0) if f.fix_mode == 3 and with_altitude else None)
        assert (f.speed_mps is not None) == ("RMC" in kinds or "VTG" in kinds)
        assert (f.sats is not None) == (with_altitude or "GSA" in kinds)
        assert (f.hdop is not None) == (with_altitude or "GSA" in kinds)


# --- what a fix needs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("epoch", "reason"),
    [
        (rmc("093015.00") + gga("093015.00", sats="00"), "gps_few_satellites"),
        (rmc("093015.00") + gga("093015.00", sats="02"), "gps_few_satellites"),
        (gga("093015.00", sats="00") + gsa("3") + zda(T0), "gps_few_satellites"),
        (rmc("093015.00") + gga("093015.00", quality="6"), "gps_estimated"),
        (rmc("093015.00") + gga("093015.00", quality="7"), "gps_estimated"),
        (nmea("GP", "RMC", "093015.00", "A", *LAT, *LON, "1.0", "90.0", "231126", "", "", "E", "V")
         + gga("093015.00"), "gps_estimated"),
        (nmea("GP", "RMC", "093015.00", "A", *LAT, *LON, "1.0", "90.0", "231126", "", "", "N", "V")
         + gga("093015.00"), "gps_no_fix"),
        (rmc("093015.00") + gll("093015.00", mode="E"), "gps_estimated"),
        (rmc("093015.00") + gga_hdop("093015.00", "20.1"), "gps_poor_hdop"),
        (rmc("093015.00") + gga_hdop("093015.00", "45.5"), "gps_poor_hdop"),
        (rmc("093015.00") + gsa("3", "01", "02", "03", "04", hdop="21.0"), "gps_poor_hdop"),
        (nmea("GP", "RMC", "093015.00", "A", "0000.00000", "N", "00000.00000", "E", "0.0", "",
              "231126", "", "", "A", "V"), "gps_implausible"),
        (rmc("093015.00") + gga("093015.00", alt="-1500.0"), "gps_implausible"),
        (nmea("GP", "RMC", "093015.00", "A", *LAT, *LON, "900.0", "90.0", "231126", "", "", "A",
              "V"), "gps_implausible"),
    ],
    ids=[
        "gga-quality-1-0-sats", "gga-2-sats", "0-sats-empty-gsa", "gga-quality-6",
        "gga-quality-7", "rmc-mode-E", "rmc-status-A-mode-N", "gll-mode-E", "hdop-20.1",
        "hdop-45.5", "gsa-hdop-21", "null-island", "altitude-below-1-km", "speed-1667-kmh",
    ],
)  # fmt: skip
def test_an_epoch_that_is_no_usable_fix_is_counted_by_reason(epoch: bytes, reason: str) -> None:
    counters = DeviceCounters()
    assert run(epoch, counters) == []
    assert rejected(counters) == {reason: 1}
    assert counters.get("gps_fixes") == 0


@pytest.mark.parametrize(
    "epoch",
    [
        rmc("093015.00") + gga("093015.00", sats="03", alt=""),
        rmc("093015.00") + gga("093015.00", sats=""),
        rmc("093015.00") + gga_hdop("093015.00", f"{MAX_HDOP:.1f}", sats="05"),
        rmc("093015.00") + gga("093015.00", quality="2") + gga("093015.00", quality="0",
                                                               sats="00", talker="GL"),
        nmea("GP", "RMC", "093015.00", "A", *LAT, *LON, "1.0", "90.0", "231126", "", ""),
    ],
    ids=["3-sats-2d", "count-not-given", "hdop-at-limit", "glonass-without-fix", "rmc-nmea-2.1"],
)  # fmt: skip
def test_limits_that_still_make_a_fix(epoch: bytes) -> None:
    counters = DeviceCounters()
    assert len(run(epoch, counters)) == 1
    assert rejected(counters) == {}


# --- time going backwards ------------------------------------------------------------------


def epochs_at(times: Sequence[datetime]) -> bytes:
    """RMC and GGA epochs at ``times``, each a little further east."""
    out = b""
    for i, t in enumerate(times):
        lon = f"{137.99800 - i * 0.01:011.5f}"
        out += nmea("GP", "RMC", hms(t), "A", *LAT, lon, "W", "1.0", "90.0", f"{t:%d%m%y}", "",
                    "", "A", "V")  # fmt: skip
        out += nmea("GP", "GGA", hms(t), *LAT, lon, "W", "1", "09", "0.9", "120.0", "M", "46.0",
                    "M", "", "")  # fmt: skip
    return out


def assert_strictly_increasing(fixes: Sequence[GpsSample]) -> None:
    assert all(a.t < b.t for a, b in itertools.pairwise(fixes))


def test_a_clock_stepping_back_13_s_publishes_no_time_twice() -> None:
    before = [T0 + i * S for i in range(21)]  # 09:30:15 .. 09:30:35
    after = [T0 + (8 + i) * S for i in range(40)]  # back to 09:30:23, then on
    counters = DeviceCounters()
    fixes = run(epochs_at(before + after), counters)
    assert_strictly_increasing(fixes)
    assert [f.t for f in fixes] == before + after[13:]
    assert rejected(counters) == {"gps_time_behind": 13}
    assert counters.get("gps_clock_resync") == 0


def test_a_repeated_time_is_dropped_and_the_flow_goes_on() -> None:
    times = [T0, T0 + S, T0 + 2 * S, T0 + S, T0 + 3 * S, T0 + 3 * S + S]
    counters = DeviceCounters()
    fixes = run(epochs_at(times), counters)
    assert [f.t for f in fixes] == [T0, T0 + S, T0 + 2 * S, T0 + 3 * S, T0 + 4 * S]
    assert rejected(counters) == {"gps_time_behind": 1}


@pytest.mark.parametrize("jump", [timedelta(hours=-1), timedelta(days=-7), timedelta(hours=5)])
def test_a_clock_that_stays_elsewhere_is_believed_after_a_minute_of_consistent_epochs(
    jump: timedelta,
) -> None:
    # Forward first, then back to T0's line (a bogus jump that the receiver corrects),
    # or straight back and staying there.
    first = [T0 + i * S for i in range(5)]
    if jump > timedelta(0):
        first += [T0 + jump + i * S for i in range(5)]
        rest = [T0 + (5 + i) * S for i in range(100)]
    else:
        rest = [T0 + jump + i * S for i in range(100)]
    counters = DeviceCounters()
    fixes = run(epochs_at(first + rest), counters)
    held_back = int(CLOCK_RESYNC_AFTER / S)
    assert held_back >= CLOCK_RESYNC_EPOCHS
    assert [f.t for f in fixes] == first + rest[held_back:]
    assert rejected(counters) == {"gps_time_behind": held_back}
    assert counters.get("gps_clock_resync") == 1
    assert_strictly_increasing(fixes[len(first) :])


def test_a_clock_jumping_about_behind_is_not_believed() -> None:
    # Behind, but not in order: each step back starts the count again.
    times = [T0 + 100 * S] + [T0 + (i % 30) * S for i in range(200)]
    counters = DeviceCounters()
    fixes = run(epochs_at(times), counters)
    assert [f.t for f in fixes] == [T0 + 100 * S]
    assert rejected(counters) == {"gps_time_behind": 200}
    assert counters.get("gps_clock_resync") == 0


def test_a_step_back_over_midnight_without_a_date_is_the_day_before_and_dropped() -> None:
    before = datetime(2026, 11, 23, 23, 59, 58, tzinfo=UTC)
    counters = DeviceCounters()
    data = epochs_at([before, before + S, before + 2 * S, before + 3 * S])
    # Then GGA alone: a step back to 23:59:59 (the day before), then 00:00:02.
    data += gga("235959.00") + gga("000002.00")
    fixes = run(data, counters)
    assert [f.t for f in fixes] == [before + i * S for i in range(4)] + [before + 4 * S]
    assert rejected(counters) == {"gps_time_behind": 1}


# --- through the reader, into the device's counters -----------------------------------------


def test_the_reader_counts_each_rejected_epoch_by_reason() -> None:
    port = VirtualSerialPort()
    counters = DeviceCounters()
    fixes: list[GpsSample] = []
    reader = GpsReader(GpsPortConfig(port=port.path), fixes.append, counters)
    reader.start()
    try:
        # pyserial empties the input when it opens the port: say hello until it listens.
        hello = nmea("GN", "TXT", "01", "01", "02", "ANTSTATUS=OK")
        wait_for(
            lambda: port.write(hello) and counters.get("nmea_sentences") > 0,
            what="the reader listening",
            timeout=10,
        )
        t = T0
        stream = [
            rmc(hms(t)) + gga(hms(t)),  # a fix
            rmc(hms(t + S)) + gga(hms(t + S), sats="00"),
            rmc(hms(t + 2 * S)) + gga(hms(t + 2 * S), quality="6"),
            rmc(hms(t + 3 * S)) + gga_hdop(hms(t + 3 * S), "30.0"),
            rmc(hms(t - 5 * S)) + gga(hms(t - 5 * S)),  # the clock steps back
            rmc(hms(t + 4 * S)) + gga(hms(t + 4 * S)),  # a fix
        ]
        for epoch in stream:
            port.write(epoch)
        wait_for(
            lambda: counters.get("gps_fixes") >= 2,
            what="two fixes from the reader",
            timeout=5,
        )
    finally:
        reader.stop()
        port.close()
    assert [f.t for f in fixes] == [T0, T0 + 4 * S]
    assert rejected(counters) == {
        "gps_few_satellites": 1,
        "gps_estimated": 1,
        "gps_poor_hdop": 1,
        "gps_time_behind": 1,
    }


def test_the_reader_dates_a_receiver_sending_gns_alone_from_the_agent_clock() -> None:
    port = VirtualSerialPort()
    counters = DeviceCounters()
    fixes: list[GpsSample] = []
    clock = ManualClock(T0 + 30 * S)
    reader = GpsReader(GpsPortConfig(port=port.path), fixes.append, counters, clock)
    reader.start()
    try:
        hello = nmea("GN", "TXT", "01", "01", "02", "ANTSTATUS=OK")
        wait_for(
            lambda: port.write(hello) and counters.get("nmea_sentences") > 0,
            what="the reader listening",
            timeout=10,
        )
        epochs = HOST_DATE_AFTER_EPOCHS + 3
        for i in range(epochs):
            port.write(gns(hms(T0 + i * S)))
        wait_for(lambda: len(fixes) == 3, what="the last epoch, closed when the line is quiet")
    finally:
        reader.stop()
        port.close()
    assert [f.t for f in fixes] == [T0 + i * S for i in range(HOST_DATE_AFTER_EPOCHS, epochs)]
    assert all(f.fix_mode == 3 and f.alt_m == pytest.approx(120.0) for f in fixes)
    assert rejected(counters) == {"gps_no_date": HOST_DATE_AFTER_EPOCHS}
