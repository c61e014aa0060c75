"""Random, truncated and checksum-valid-but-malformed input on each reader's serial port
(a pseudo-terminal), then good data: the good data is still read, and whatever ends a
reader is counted, kept as its last error and followed by a restart."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.agent import Agent
from edge_agent.counters import DeviceCounters
from edge_agent.fridge_reader import FridgeReader
from edge_agent.gps_reader import GpsReader
from edge_agent.vedirect_reader import VeDirectReader
from firmware_config.agent import AgentConfig, GpsPortConfig
from firmware_config.fridge import FridgePortConfig
from firmware_config.vedirect import VeDirectPortConfig
from protocol.models import EnergySample, FridgeSample, GpsSample
from simulators.nmea_out import Epoch, epoch_sentences
from simulators.serial_port import VirtualSerialPort
from simulators.vedirect_device import checksummed_block
from tests.support.wait import wait_for

FUZZ = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
# Field text a device could send: printable ASCII, none of the framing characters.
FIELD = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="$*,\t\r\n"),
    max_size=12,
)


class Collected:
    def __init__(self) -> None:
        self.items: list[Any] = []
        self.lock = threading.Lock()

    def add(self, item: Any) -> None:
        with self.lock:
            self.items.append(item)

    def snapshot(self) -> list[Any]:
        with self.lock:
            return list(self.items)


def until_read(port: VirtualSerialPort, data: Callable[[int], bytes], got: Collected) -> int:
    """Write ``data(0)``, ``data(1)`` … until the reader hands something out: opening a
    port discards what was written before, so the first writes may go nowhere. Each
    attempt is new data, as a device's would be (a GPS receiver never repeats an epoch's
    time). Returns the number of attempts."""
    for attempt in range(150):
        port.write(data(attempt))
        if got.snapshot():
            return attempt + 1
        time.sleep(0.2)
    raise AssertionError("the reader never read the port")


# --- NMEA ------------------------------------------------------------------------------


def nmea(body: str) -> bytes:
    checksum = 0
    for byte in body.encode("ascii"):
        checksum ^= byte
    return f"${body}*{checksum:02X}\r\n".encode("ascii")


@st.composite
def malformed_sentence(draw: st.DrawFn) -> bytes:
    """A sentence with a right checksum and a shape no receiver sends."""
    talker = draw(st.sampled_from(["GP", "GN", "GL", "GA", "P", ""]))
    kind = draw(st.sampled_from(["GGA", "RMC", "GSA", "GSV", "VTG", "GLL", "ZDA", "GNS", "TXT"]))
    kind = draw(st.one_of(st.just(kind), st.sampled_from(["GRMT", "UBX", "MTK001", "X"])))
    fields = draw(st.lists(FIELD, max_size=20))
    return nmea(",".join([talker + kind, *fields]))


def good_epoch_lines(k: int) -> bytes:
    t = T0 + timedelta(seconds=k)
    return b"".join(epoch_sentences(Epoch(t, 49.24 + k * 1e-5, 1.63, 5.0, 90.0)))


NMEA_JUNK = st.one_of(
    st.binary(max_size=300),
    malformed_sentence(),
    st.builds(
        lambda k, cut: good_epoch_lines(k)[:cut] + b"\r\n", st.integers(0, 50), st.integers(0, 200)
    ),
)


def test_the_gps_reader_reads_good_fixes_after_any_junk() -> None:
    fixes = Collected()
    counters = DeviceCounters()
    with VirtualSerialPort() as port:
        reader = GpsReader(GpsPortConfig(port=port.path, keep_every_s=0), fixes.add, counters)
        reader.start()
        k = 1000
        try:
            until_read(port, good_epoch_lines, fixes)

            @FUZZ
            @given(junk=st.lists(NMEA_JUNK, min_size=1, max_size=4))
            def check(junk: list[bytes]) -> None:
                nonlocal k
                for chunk in junk:
                    port.write(chunk)
                k += 2
                port.write(b"\r\n" + good_epoch_lines(k) + good_epoch_lines(k + 1))
                wanted = T0 + timedelta(seconds=k + 1)
                wait_for(
                    lambda: any(
                        isinstance(f, GpsSample) and f.t == wanted for f in fixes.snapshot()
                    ),
                    timeout=10,
                    what=f"the fix at {wanted} after {junk!r}",
                )

            check()
        finally:
            reader.stop()
    # The parsers skipped what they refused; nothing had to restart the reader.
    assert counters.get("nmea_malformed") + counters.get("nmea_garbage") > 0
    assert counters.get("reader_errors") == 0


def test_a_sentence_the_library_refuses_is_counted_and_skipped() -> None:
    """The case of the issue: a $GPTXT with a field of the wrong type, and a proprietary
    sentence, each with a right checksum."""
    fixes = Collected()
    counters = DeviceCounters()
    with VirtualSerialPort() as port:
        reader = GpsReader(GpsPortConfig(port=port.path, keep_every_s=0), fixes.add, counters)
        reader.start()
        try:
            k = until_read(port, good_epoch_lines, fixes) + 1
            port.write(nmea("GPTXT,xx,01,02,ANTENNA OK") + nmea("GPGSA,A,x") + good_epoch_lines(k))
            wanted = T0 + timedelta(seconds=k)
            wait_for(
                lambda: any(f.t == wanted for f in fixes.snapshot()),
                what="a fix after the refused sentences",
            )
        finally:
            reader.stop()
    assert counters.get("nmea_malformed") == 2
    assert counters.get("reader_errors") == 0


def test_a_reader_that_fails_is_counted_with_its_error_and_restarted(tmp_path: Path) -> None:
    """A defect outside the parsers (here the consumer of fixes) ends the reader's loop:
    the supervisor counts it under the device, keeps the error's text for the status
    report, and runs the reader again."""
    fixes = Collected()
    counters = DeviceCounters()
    calls = 0

    def flaky(fix: GpsSample) -> None:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise RuntimeError(f"disk full #{calls}")
        fixes.add(fix)

    with VirtualSerialPort() as port:
        reader = GpsReader(GpsPortConfig(port=port.path, keep_every_s=0), flaky, counters)
        reader.start()
        try:
            k = 0
            while not fixes.snapshot() and k < 60:
                port.write(good_epoch_lines(k))
                k += 1
                time.sleep(0.3)
            assert fixes.snapshot(), "no fix after the reader's restarts"
        finally:
            reader.stop()
    assert counters.get("reader_errors") == 2
    assert counters.last_error == "RuntimeError: disk full #2"
    # The agent's status report carries the device's count and last error.
    agent = Agent(AgentConfig(vehicle="vexin-01", state_dir=tmp_path))
    try:
        agent.gps_counters.add("reader_errors", 2)
        agent.gps_counters.note_error("RuntimeError: disk full #2")
        status = agent._status_sample(online=True)
    finally:
        agent.stop()
    assert status.counters["gps.reader_errors"] == 2
    assert status.errors == {"gps": "RuntimeError: disk full #2"}


# --- VE.Direct --------------------------------------------------------------------------


def bmv_block(millivolts: int) -> bytes:
    return checksummed_block(
        [
            ("PID", "0xA381"),
            ("V", str(millivolts)),
            ("I", "-1200"),
            ("P", "-15"),
            ("CE", "-3000"),
            ("SOC", "876"),
            ("TTG", "-1"),
            ("Alarm", "OFF"),
            ("AR", "0"),
        ]
    )


LABEL = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=":"),
    min_size=1,
    max_size=20,
)
VALUE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40) | st.integers(
    -(2**70), 2**70
).map(str)
KNOWN_LABELS = st.sampled_from(
    [
        "PID",
        "V",
        "VS",
        "I",
        "P",
        "CE",
        "SOC",
        "TTG",
        "AR",
        "Alarm",
        "VPV",
        "PPV",
        "CS",
        "ERR",
        "H19",
        "H20",
    ]
)


@st.composite
def odd_block(draw: st.DrawFn) -> bytes:
    """A block whose checksum is right and whose records are odd: unknown labels,
    values of the wrong type or out of any range, too many records."""
    records = [("PID", draw(st.sampled_from(["0xA381", "0xA060", "0xFFFF", "nope", ""])))]
    records += draw(st.lists(st.tuples(KNOWN_LABELS | LABEL, VALUE), max_size=40))
    return checksummed_block(records)


VEDIRECT_JUNK = st.one_of(
    st.binary(max_size=400),
    odd_block(),
    st.builds(lambda cut: bmv_block(12345)[:cut], st.integers(0, 120)),
    st.builds(lambda d: b":A" + d + b"\n", st.binary(max_size=100)),
)


def test_the_vedirect_reader_reads_good_blocks_after_any_junk() -> None:
    samples = Collected()
    counters = DeviceCounters()
    with VirtualSerialPort() as port:
        reader = VeDirectReader(
            VeDirectPortConfig(port=port.path, device="bmv"), samples.add, counters
        )
        reader.start()
        millivolts = 12000
        try:
            until_read(port, lambda _: bmv_block(millivolts), samples)

            @FUZZ
            @given(junk=st.lists(VEDIRECT_JUNK, min_size=1, max_size=4))
            def check(junk: list[bytes]) -> None:
                nonlocal millivolts
                for chunk in junk:
                    port.write(chunk)
                millivolts += 2
                port.write(bmv_block(millivolts) + bmv_block(millivolts + 1))
                wanted = millivolts + 1
                wait_for(
                    lambda: any(
                        isinstance(s, EnergySample)
                        and s.voltage_v is not None
                        and round(s.voltage_v * 1000) == wanted
                        for s in samples.snapshot()
                    ),
                    timeout=10,
                    what=f"the block at {wanted} mV after {junk!r}",
                )

            check()
        finally:
            reader.stop()
    assert counters.get("reader_errors") == 0


# --- Modbus RTU -------------------------------------------------------------------------


def crc16(frame: bytes) -> bytes:
    crc = 0xFFFF
    for byte in frame:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc.to_bytes(2, "little")


def with_crc(frame: bytes) -> bytes:
    return frame + crc16(frame)


class ProbeOnTheLine:
    """Answers the reader's requests as an SHT20 probe would (address 1, input registers
    1 and 2), except that the answers queued in ``bad`` go first, one per request."""

    def __init__(self, port: VirtualSerialPort) -> None:
        self.port = port
        self.bad: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self.tenths = 40  # the temperature served, in 0.1 °C
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            request = self.port.read(timeout=0.05)
            if len(request) < 8:
                continue
            try:
                self.port.write(self.bad.get_nowait())
                continue
            except queue.Empty:
                pass
            address, function = request[0], request[1]
            count = int.from_bytes(request[4:6], "big")
            if address != 1 or function != 4 or count != 2:
                continue
            data = self.tenths.to_bytes(2, "big", signed=True) + (555).to_bytes(2, "big")
            self.port.write(with_crc(bytes([1, 4, len(data)]) + data))

    def __enter__(self) -> ProbeOnTheLine:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@st.composite
def odd_answer(draw: st.DrawFn) -> bytes:
    """An answer with a right CRC and a wrong shape: another function or address, a byte
    count that does not match, too short or too long, an exception code."""
    address = draw(st.sampled_from([1, 1, 1, 2, 0, 255]))
    function = draw(st.sampled_from([4, 4, 3, 1, 2, 0x84, 0x83, 0x2B, 0x11, 0]))
    body = draw(st.binary(max_size=12))
    count = draw(st.sampled_from([len(body), len(body) + 1, 0, 4, 255]))
    shape = draw(st.sampled_from(["counted", "bare", "exception"]))
    if shape == "counted":
        frame = bytes([address, function, count]) + body
    elif shape == "bare":
        frame = bytes([address, function]) + body
    else:
        frame = bytes([address, function | 0x80, draw(st.integers(0, 255))])
    return with_crc(frame)


MODBUS_JUNK = st.one_of(odd_answer(), st.binary(min_size=1, max_size=40))


@contextmanager
def fridge_reader(port: VirtualSerialPort, samples: Collected) -> Iterator[FridgeReader]:
    config = FridgePortConfig.model_validate(
        {
            "port": port.path,
            "sensors": [{"profile": "sht20-xy-md02"}],
            "poll_interval_s": 0.05,
            "response_timeout_s": 0.2,
            "retries": 0,
            "retry_backoff_s": 0.02,
            "reopen_backoff_s": 0.05,
            "reopen_backoff_max_s": 0.2,
        }
    )
    reader = FridgeReader(config, samples.add)
    reader.start()
    try:
        yield reader
    finally:
        reader.stop()


def test_the_fridge_reader_reads_good_answers_after_any_malformed_one() -> None:
    samples = Collected()
    with (
        VirtualSerialPort() as port,
        ProbeOnTheLine(port) as probe,
        fridge_reader(port, samples) as reader,
    ):

        @settings(FUZZ, max_examples=15)
        @given(junk=st.lists(MODBUS_JUNK, min_size=1, max_size=3))
        def check(junk: list[bytes]) -> None:
            for answer in junk:
                probe.bad.put(answer)
            probe.tenths += 1
            wanted = probe.tenths
            wait_for(
                lambda: any(
                    isinstance(s, FridgeSample)
                    and s.temp_c is not None
                    and round(s.temp_c * 10) == wanted
                    for s in samples.snapshot()
                ),
                timeout=15,
                what=f"the reading {wanted / 10} °C after {junk!r}",
            )

        check()
        counters = reader.counters
    assert counters.get("reader_errors") == 0
    assert counters.get("samples") > 15
