"""Recording a serial device with timing, and replaying it on a pseudo-terminal, through
the real ``medicobus sim record`` and ``medicobus sim replay`` commands."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import serial

from edge_agent.agent import Agent
from edge_agent.counters import DeviceCounters
from edge_agent.nmea import EpochAssembler, NmeaFramer, parse_sentence
from firmware_config.agent import AgentConfig, BrokerConfig, GpsPortConfig
from ingest.itinerary import Itinerary
from protocol.clock import ScaledClock
from protocol.models import GpsSample
from simulators.day_plan import plan_day
from simulators.gps_device import NmeaReceiverSimulator
from simulators.gps_track import ScenarioGpsTrack
from simulators.recording import (
    RecordingError,
    RecordingHeader,
    RecordingWriter,
    read_recording,
)
from simulators.scenario import bundled_scenarios, load_scenario
from simulators.serial_port import VirtualSerialPort
from tests.simulators.collector import BatchCollector
from tests.support.mosquitto import Mosquitto
from tests.support.wait import wait_for

MEDICOBUS = str(Path(sys.executable).parent / "medicobus")


def write_recording(path: Path, chunks: list[tuple[float, bytes]]) -> None:
    with path.open("w", encoding="utf-8") as out:
        writer = RecordingWriter(
            out, RecordingHeader(port="/dev/ttyACM0", baudrate=9600, started=datetime.now(UTC))
        )
        for t, data in chunks:
            writer.write(t, data)


def parse_fixes(data: bytes) -> list[GpsSample]:
    counters = DeviceCounters()
    framer, assembler = NmeaFramer(counters), EpochAssembler(counters)
    fixes = []
    for sentence in framer.feed(data):
        msg = parse_sentence(sentence, counters)
        if msg is not None and (fix := assembler.feed(msg)) is not None:
            fixes.append(fix)
    if (fix := assembler.flush()) is not None:
        fixes.append(fix)
    return fixes


@contextmanager
def replaying(recording: Path, speed: float) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``medicobus sim replay`` running; yields the process and its pseudo-terminal."""
    proc = subprocess.Popen(
        [MEDICOBUS, "sim", "replay", str(recording), "--speed", str(speed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        path = proc.stdout.readline().strip()
        assert path.startswith("/dev/"), path
        yield proc, path
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.communicate(timeout=10)


def test_recording_files_are_checked_line_by_line(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    write_recording(good, [(0.0, b"$GPRMC"), (0.5, b",1\r\n")])
    recording = read_recording(good)
    assert recording.data() == b"$GPRMC,1\r\n"
    assert recording.duration_s == 0.5
    lines = good.read_text().splitlines()
    cases = {
        "not a recording header": "{}\n",
        "t 0.1 goes back": "\n".join([lines[0], lines[2], '{"t": 0.1, "data": "JA=="}']),
        "data: Value error, not base64": "\n".join([lines[0], '{"t": 1, "data": "%%%"}']),
        "t: Input should be greater than or equal to 0": "\n".join(
            [lines[0], '{"t": -1, "data": "JA=="}']
        ),
        "empty file": "",
    }
    for expected, text in cases.items():
        bad = tmp_path / "bad.jsonl"
        bad.write_text(text)
        with pytest.raises(RecordingError, match=expected) as caught:
            read_recording(bad)
        assert str(bad) in str(caught.value)
    with pytest.raises(RecordingError, match="no such recording"):
        read_recording(tmp_path / "absent.jsonl")


def test_record_captures_what_a_device_sends_with_its_timing(tmp_path: Path) -> None:
    output = tmp_path / "gps.jsonl"
    with VirtualSerialPort(hold_device_end=False) as device:
        recorder = subprocess.Popen(
            [MEDICOBUS, "sim", "record", device.path, "-o", str(output), "--duration", "1.5"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for(device.reader_attached, timeout=10, what="the recorder opening the port")
        sent = []
        for i in range(5):
            burst = f"$GPTXT,{i}*00\r\n".encode() * (i + 1)
            device.write(burst)
            sent.append(burst)
            time.sleep(0.2)
        out, err = recorder.communicate(timeout=20)
    assert recorder.returncode == 0, err
    assert f"recorded {sum(map(len, sent))} bytes" in out
    recording = read_recording(output)
    assert recording.header.port == device.path
    assert recording.data() == b"".join(sent)
    times = [c.t for c in recording.chunks]
    assert times == sorted(times)
    # The bursts were written 0.2 s apart at least: the recording keeps them apart.
    assert times[-1] - times[0] >= 0.5


def test_record_reports_a_missing_port(tmp_path: Path) -> None:
    result = subprocess.run(
        [MEDICOBUS, "sim", "record", "/dev/nonexistent-gps", "-o", str(tmp_path / "x.jsonl")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "error: /dev/nonexistent-gps" in result.stderr


def test_replay_plays_the_recording_on_a_pseudo_terminal(tmp_path: Path) -> None:
    recording = tmp_path / "bytes.jsonl"
    chunks = [(i * 0.25, bytes([i]) * (i + 1) + b"\r\n") for i in range(1, 9)]
    write_recording(recording, chunks)
    received = b""
    with replaying(recording, speed=4.0) as (proc, path):
        with serial.Serial(path, 9600, timeout=0.2) as port:
            expected = b"".join(data for _, data in chunks)
            deadline = time.monotonic() + 20
            while len(received) < len(expected) and time.monotonic() < deadline:
                received += port.read(4096)
        out, _ = proc.communicate(timeout=20)
    assert received == expected
    assert f"replayed {len(expected)} bytes; 0 dropped" in out


def test_replay_refuses_a_broken_recording(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"format": "something else"}\n')
    result = subprocess.run(
        [MEDICOBUS, "sim", "replay", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert f"{bad}:1: not a recording header" in result.stderr


def test_a_replayed_recording_gives_the_agent_the_fixes_the_simulator_sent(
    tmp_path: Path, mosquitto: Mosquitto, itinerary: Itinerary
) -> None:
    plan = plan_day(load_scenario(bundled_scenarios()["vexin-traffic-light"]), itinerary)
    track = ScenarioGpsTrack(plan)
    # The bus leaving the depot, 30 times faster than real time.
    start = plan.time_of(plan.phases[1].start_s - 20)
    receiver = NmeaReceiverSimulator(track, ScaledClock(start, speed=30.0))
    output = tmp_path / "gps.jsonl"
    receiver.start()
    try:
        result = subprocess.run(
            [MEDICOBUS, "sim", "record", receiver.path, "-o", str(output), "--duration", "3"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        receiver.stop()
    assert result.returncode == 0, result.stderr
    # Read directly, the recorded bytes are the simulator's epochs.
    direct = parse_fixes(read_recording(output).data())
    assert len(direct) > 40
    for fix in direct:
        sent = track.epoch_at(fix.t)
        assert fix.lat == pytest.approx(sent.lat, abs=1e-6)
        assert fix.lon == pytest.approx(sent.lon, abs=1e-6)
        assert fix.speed_mps == pytest.approx(sent.speed_mps, abs=0.01)
    assert max(f.speed_mps or 0.0 for f in direct) > 3.0  # it is driving off

    with BatchCollector(mosquitto.host, mosquitto.port) as collector:
        with replaying(output, speed=5.0) as (proc, path):
            agent = Agent(
                AgentConfig(
                    vehicle="vexin-01",
                    state_dir=tmp_path / "agent",
                    batch_window_s=0.2,
                    gps=GpsPortConfig(port=path),
                    broker=BrokerConfig(url=mosquitto.url, client_id="replay-agent"),
                )
            )
            agent.start()
            try:
                proc.wait(timeout=30)
                wait_for(
                    lambda: len(collector.gps("vexin-01")) >= len(direct),
                    timeout=15,
                    what="the replayed fixes at the broker",
                )
            finally:
                agent.stop()
        assert collector.gps("vexin-01") == direct
        assert not collector.invalid
    assert start + timedelta(seconds=1) <= direct[0].t
