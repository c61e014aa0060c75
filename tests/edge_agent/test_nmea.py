from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_gn_talker_is_accepted() -> None:
    assert len(run(epochs(2, talker="GN"))) == 2


def test_bad_checksum_is_counted_and_skipped() -> None:
    data = bytearray(epochs(2))
    star = data.index(b"*", data.index(b"GPGGA"))  # spoil the first GGA
    data[star + 1 : star + 3] = b"00" if data[star + 1 : star + 3] != b"00" else b"11"
    counters = DeviceCounters()
    fixes = run(bytes(data), counters)
    assert counters.get("nmea_bad_checksum") == 1
    # RMC, VTG and GSA of the spoilt epoch still make a fix.
    assert len(fixes) == 2
    assert fixes[0].sats is None


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
