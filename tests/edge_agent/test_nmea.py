from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pynmeagps import GET, NMEAMessage

from edge_agent.counters import DeviceCounters
from edge_agent.nmea import EpochAssembler, NmeaFramer, parse_sentence
from protocol.models import GpsSample
from simulators.nmea_out import Epoch, epoch_sentences

T0 = datetime(2026, 11, 23, 9, 30, 15, tzinfo=UTC)


def run(data: bytes, counters: DeviceCounters | None = None) -> list[GpsSample]:
    counters = counters or DeviceCounters()
    framer, assembler = NmeaFramer(counters), EpochAssembler(counters)
    fixes = []
    for sentence in framer.feed(data):
        msg = parse_sentence(sentence, counters)
        if msg is not None and (fix := assembler.feed(msg)) is not None:
            fixes.append(fix)
    if (last := assembler.flush()) is not None:
        fixes.append(last)
    return fixes


def epochs(n: int, start: datetime = T0, talker: str = "GP") -> bytes:
    return b"".join(
        b"".join(
            epoch_sentences(
                Epoch(start + timedelta(seconds=i), 49.2411 + i * 1e-4, -1.6333, 12.5, 45.0),
                talker,
            )
        )
        for i in range(n)
    )


def test_one_fix_per_epoch_with_all_fields() -> None:
    fixes = run(epochs(3))
    assert [f.t for f in fixes] == [T0 + timedelta(seconds=i) for i in range(3)]
    first = fixes[0]
    assert first.lat == pytest.approx(49.2411, abs=1e-6)
    assert first.lon == pytest.approx(-1.6333, abs=1e-6)
    assert first.speed_mps == pytest.approx(12.5, abs=0.01)
    assert first.course_deg == pytest.approx(45.0)
    assert first.fix_mode == 3
    assert first.sats == 9
    assert first.hdop == pytest.approx(0.9)
    assert first.alt_m == pytest.approx(120.0)


@pytest.mark.parametrize("talker", ["GP", "GN", "GL", "GA", "GB", "BD"])
def test_any_constellation_talker_is_accepted(talker: str) -> None:
    assert len(run(epochs(2, talker=talker))) == 2


def nmea(talker: str, msg_id: str, *fields: str) -> bytes:
    return bytes(NMEAMessage(talker, msg_id, GET, payload=list(fields)).serialize())


LAT, LON = ("4914.46600", "N"), ("00137.99800", "W")  # 49.2411, -1.6333


def gga(
    hms: str, quality: str = "1", sats: str = "09", alt: str = "120.0", talker: str = "GP"
) -> bytes:
    return nmea(talker, "GGA", hms, *LAT, *LON, quality, sats, "0.9", alt, "M", "46.0", "M", "", "")


def rmc(hms: str, status: str = "A", ddmmyy: str = "231126") -> bytes:
    return nmea("GP", "RMC", hms, status, *LAT, *LON, "1.0", "90.0", ddmmyy, "", "", "A")


def gsa(mode: str, *svids: str, hdop: str = "0.9", talker: str = "GN") -> bytes:
    return nmea(talker, "GSA", "A", mode, *svids, *[""] * (12 - len(svids)), "1.5", hdop, "1.2")


def test_mode_without_gsa_follows_gga_altitude_and_satellites() -> None:
    fixes = run(
        rmc("093015.00")
        + gga("093015.00")  # altitude and 9 satellites: 3D
        + gga("093016.00", sats="03")  # altitude but 3 satellites: 2D
        + gga("093017.00", alt="")  # no altitude: 2D
        + rmc("093018.00")  # position alone: 2D
    )
    assert [f.fix_mode for f in fixes] == [3, 2, 2, 2]
    assert [f.alt_m for f in fixes] == [pytest.approx(120.0), None, None, None]
    assert [f.t.second for f in fixes] == [15, 16, 17, 18]
    assert fixes[3].lat == pytest.approx(49.2411, abs=1e-6)
    assert fixes[3].lon == pytest.approx(-1.6333, abs=1e-6)


def test_gsa_states_the_mode() -> None:
    fixes = run(rmc("093015.00") + gga("093015.00") + gsa("2", "01", "02", "03"))
    assert fixes[0].fix_mode == 2
    assert fixes[0].alt_m is None


@pytest.mark.parametrize(
    "epoch",
    [
        rmc("093015.00", status="V") + gga("093015.00") + gsa("3", "01", "02", "03", "04"),
        rmc("093015.00") + gga("093015.00", quality="0") + gsa("3", "01", "02", "03", "04"),
        rmc("093015.00") + gga("093015.00") + gsa("1"),
    ],
    ids=["rmc-status-v", "gga-quality-0", "gsa-mode-1"],
)
def test_any_sentence_saying_no_fix_wins(epoch: bytes) -> None:
    counters = DeviceCounters()
    assert run(epoch, counters) == []
    assert counters.get("gps_no_fix") == 1


def test_one_constellation_without_satellites_does_not_void_the_fix() -> None:
    # SiRFstarV-like: a GGA and a GSA per constellation, GLONASS contributing nothing.
    fixes = run(
        rmc("093015.00")
        + gga("093015.00", sats="08", talker="GP")
        + gga("093015.00", quality="0", sats="00", talker="GL")
        + gsa("3", "01", "02", "03", "04", "05", "06", "07", "08")
        + gsa("1")
    )
    assert len(fixes) == 1
    assert fixes[0].fix_mode == 3
    assert fixes[0].sats == 8


def test_empty_gga_quality_is_not_a_no_fix() -> None:
    fixes = run(rmc("093015.00") + gga("093015.00", quality=""))
    assert len(fixes) == 1
    assert fixes[0].quality == 1


def test_time_less_no_fix_sentences_count_one_no_fix_per_cycle() -> None:
    cycle = nmea("GP", "RMC", "", "V", *[""] * 9, "N") + gga("", quality="0", sats="")
    counters = DeviceCounters()
    assert run(cycle * 3, counters) == []
    assert counters.get("gps_no_fix") == 3


def test_sentence_arriving_after_its_epoch_was_flushed_is_not_a_second_fix() -> None:
    counters = DeviceCounters()
    framer, assembler = NmeaFramer(counters), EpochAssembler(counters)

    def feed(data: bytes) -> list[GpsSample]:
        fixes = []
        for sentence in framer.feed(data):
            msg = parse_sentence(sentence, counters)
            if msg is not None and (fix := assembler.feed(msg)) is not None:
                fixes.append(fix)
        return fixes

    assert feed(rmc("093015.00")) == []
    first = assembler.flush()  # the line went quiet
    assert first is not None
    assert feed(gga("093015.00") + gsa("3", "01", "02", "03", "04")) == []
    assert assembler.flush() is None
    assert counters.get("nmea_outside_epoch") == 2
    assert feed(rmc("093016.00")) == []
    assert assembler.flush() is not None


def test_satellites_per_constellation_gga_add_up_and_gsa_lists_beat_a_capped_count() -> None:
    sirf = run(
        rmc("093015.00")
        + gga("093015.00", sats="08", talker="GP")
        + gga("093015.00", sats="02", talker="GL")
    )
    assert sirf[0].sats == 10
    gps = [f"{n:02d}" for n in range(1, 13)]
    glonass = [f"{n:02d}" for n in range(65, 72)]
    ublox = run(
        rmc("093015.00") + gga("093015.00", sats="12") + gsa("3", *gps) + gsa("3", *glonass)
    )
    assert ublox[0].sats == 19


def test_invalid_dop_and_invalid_vtg_are_ignored() -> None:
    fixes = run(
        rmc("093015.00")
        + nmea(
            "GP", "GGA", "093015.00", *LAT, *LON, "1", "09", "99.99", "120.0", "M", "", "M", "", ""
        )
        + nmea("GP", "VTG", "180.0", "T", "", "M", "50.0", "N", "92.6", "K", "N")
    )
    assert fixes[0].hdop is None
    assert fixes[0].speed_mps == pytest.approx(1.0 * 1852 / 3600)
    assert fixes[0].course_deg == pytest.approx(90.0)


def test_gll_gives_a_position_and_the_date_carries_forward() -> None:
    gll = nmea("GP", "GLL", *LAT, *LON, "093016.00", "A", "A")
    fixes = run(rmc("093015.00") + gll)
    assert [f.t for f in fixes] == [T0, T0 + timedelta(seconds=1)]
    assert fixes[1].fix_mode == 2
    assert fixes[1].lat == pytest.approx(49.2411, abs=1e-6)


def test_fix_before_any_date_is_counted_not_published() -> None:
    counters = DeviceCounters()
    assert run(gga("093014.00") + rmc("093015.00"), counters)[0].t == T0
    assert counters.get("gps_no_date") == 1


def test_a_small_step_back_in_time_is_not_midnight() -> None:
    counters = DeviceCounters()
    fixes = run(rmc("093015.00") + gga("093016.00") + gga("093014.00") + gga("093017.00"), counters)
    # The step back is held back (not after the last fix), not taken for a new day.
    assert [f.t for f in fixes] == [T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)]
    assert counters.get("gps_time_behind") == 1


def test_bad_checksum_is_counted_and_skipped() -> None:
    data = bytearray(epochs(2))
    star = data.index(b"*", data.index(b"GPGGA"))  # spoil the first GGA
    data[star + 1 : star + 3] = b"00" if data[star + 1 : star + 3] != b"00" else b"11"
    counters = DeviceCounters()
    fixes = run(bytes(data), counters)
    assert counters.get("nmea_bad_checksum") == 1
    # RMC, VTG and GSA of the spoilt epoch still make a fix, without GGA's altitude; the
    # satellites come from GSA's list.
    assert len(fixes) == 2
    assert fixes[0].alt_m is None
    assert fixes[0].sats == 9
    assert fixes[1].alt_m == pytest.approx(120.0)


def test_garbage_truncated_lines_and_receiver_restart_are_survived() -> None:
    good = epochs(2)
    noise = bytes(range(256)) * 3 + b"\n"
    half = good[:30]  # receiver restarts mid-line: a fragment, then a full sentence
    counters = DeviceCounters()
    fixes = run(noise + half + good, counters)
    assert len(fixes) == 2
    assert counters.get("nmea_garbage") + counters.get("nmea_truncated") >= 2


def test_no_fix_epochs_produce_no_sample() -> None:
    data = b"".join(epoch_sentences(Epoch(T0, 0, 0, 0, 0, fix=False)))
    counters = DeviceCounters()
    assert run(data, counters) == []
    assert counters.get("gps_no_fix") == 1


def test_midnight_rollover_without_rmc() -> None:
    before = datetime(2026, 11, 23, 23, 59, 59, tzinfo=UTC)
    data = b"".join(epoch_sentences(Epoch(before, 49.0, 1.0, 0, 0)))
    after = b"".join(
        s
        for s in epoch_sentences(Epoch(before + timedelta(seconds=1), 49.0, 1.0, 0, 0))
        if b"RMC" not in s
    )
    fixes = run(data + after)
    assert [f.t for f in fixes] == [before, before + timedelta(seconds=1)]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.binary(max_size=120) | st.sampled_from(epoch_sentences(Epoch(T0, 49.0, 1.0, 5.0, 90.0))),
        max_size=30,
    )
)
def test_any_byte_stream_never_raises(chunks: list[bytes]) -> None:
    fixes = run(b"".join(chunks))
    assert all(isinstance(f, GpsSample) for f in fixes)
