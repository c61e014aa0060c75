"""Recordings of what a serial device sends, with timing, and their replay on a
pseudo-terminal.

File format (JSON Lines, UTF-8), one object per line::

    {"format": "medicobus-serial-recording", "version": 1, "port": "/dev/ttyACM0",
     "baudrate": 9600, "started": "2026-11-23T08:00:00Z"}
    {"t": 0.000, "data": "JEdQUk1DLDA4MDAwMC4wMCxBLDQ5MTQuNDY2..."}
    {"t": 1.002, "data": "..."}

The first line is the header; each further line is one chunk of bytes as read from the
port: ``t`` seconds after the recording started (never decreasing) and ``data`` the
bytes in standard base64. Replaying writes each chunk ``t / speed`` seconds after the
start, so a receiver's bursts and silences keep their shape.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Final, Literal

import serial
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
)

from simulators.serial_port import VirtualSerialPort

RECORDING_FORMAT: Final = "medicobus-serial-recording"
READ_TIMEOUT_S: Final = 0.05


class RecordingError(ValueError):
    """A recording file that cannot be replayed; the message names the file and line."""


class RecordingHeader(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["medicobus-serial-recording"] = RECORDING_FORMAT
    version: Literal[1] = 1
    port: str
    baudrate: int = Field(ge=50, le=4_000_000)
    started: AwareDatetime


class RecordedChunk(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    t: float = Field(ge=0, description="seconds after the recording started")
    data: bytes = Field(min_length=1, description="base64 in the file")

    @field_validator("data", mode="before")
    @classmethod
    def _decode(cls, value: object) -> object:
        # Text (from the file) is base64; bytes (from a port) are taken as they are.
        if isinstance(value, str):
            try:
                return base64.b64decode(value, validate=True)
            except binascii.Error as exc:
                raise ValueError(f"not base64 ({exc})") from None
        return value

    @field_serializer("data")
    def _encode(self, value: bytes) -> str:
        return base64.b64encode(value).decode("ascii")


@dataclass(frozen=True)
class Recording:
    header: RecordingHeader
    chunks: tuple[RecordedChunk, ...]

    @property
    def duration_s(self) -> float:
        return self.chunks[-1].t if self.chunks else 0.0

    @property
    def size(self) -> int:
        return sum(len(c.data) for c in self.chunks)

    def data(self) -> bytes:
        return b"".join(c.data for c in self.chunks)


def _first_error(exc: ValidationError) -> str:
    item = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in item["loc"]) or "line"
    return f"{where}: {item['msg']}"


def read_recording(path: Path) -> Recording:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise RecordingError(f"{path}: no such recording") from None
    except (UnicodeDecodeError, IsADirectoryError) as exc:
        raise RecordingError(f"{path}: not a recording ({exc})") from None
    if not lines:
        raise RecordingError(f"{path}: empty file, no header")
    try:
        header = RecordingHeader.model_validate_json(lines[0])
    except ValidationError as exc:
        raise RecordingError(f"{path}:1: not a recording header ({_first_error(exc)})") from None
    chunks: list[RecordedChunk] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            chunk = RecordedChunk.model_validate_json(line)
        except ValidationError as exc:
            raise RecordingError(f"{path}:{number}: {_first_error(exc)}") from None
        if chunks and chunk.t < chunks[-1].t:
            raise RecordingError(f"{path}:{number}: t {chunk.t} goes back before {chunks[-1].t}")
        chunks.append(chunk)
    return Recording(header, tuple(chunks))


class RecordingWriter:
    """Appends chunks to a recording file as they come (flushed, so a killed recorder
    leaves a valid file)."""

    def __init__(self, out: IO[str], header: RecordingHeader) -> None:
        self._out = out
        self._out.write(header.model_dump_json() + "\n")
        self._out.flush()
        self.chunks = 0
        self.bytes = 0

    def write(self, t: float, data: bytes) -> None:
        self._out.write(RecordedChunk(t=round(t, 6), data=data).model_dump_json() + "\n")
        self._out.flush()
        self.chunks += 1
        self.bytes += len(data)


def record_port(
    port: str,
    baudrate: int,
    out: IO[str],
    *,
    stop: threading.Event,
    duration_s: float | None = None,
    on_chunk: Callable[[float, int], None] | None = None,
) -> RecordingWriter:
    """Read ``port`` until ``stop`` is set or ``duration_s`` has passed; every read is one
    chunk, stamped when it arrived. Raises :class:`serial.SerialException` if the port
    cannot be opened."""
    with serial.Serial(port, baudrate, timeout=READ_TIMEOUT_S) as device:
        header = RecordingHeader(port=port, baudrate=baudrate, started=datetime.now(UTC))
        writer = RecordingWriter(out, header)
        origin = time.monotonic()
        while not stop.is_set():
            elapsed = time.monotonic() - origin
            if duration_s is not None and elapsed >= duration_s:
                break
            data = device.read(1)
            if data:
                # A burst is one chunk: take what arrived with its first byte.
                data += device.read(device.in_waiting)
                t = time.monotonic() - origin
                writer.write(t, data)
                if on_chunk is not None:
                    on_chunk(t, len(data))
    return writer


def wait_for_reader(port: VirtualSerialPort, stop: threading.Event) -> bool:
    """Block until a program opens ``port`` (True) or ``stop`` is set (False)."""
    while not stop.is_set():
        if port.reader_attached():
            return True
        stop.wait(0.05)
    return False


def schedule(chunks: Sequence[RecordedChunk], speed: float) -> Iterator[tuple[float, bytes]]:
    """Each chunk with the wall-clock offset it is due at."""
    if speed <= 0:
        raise ValueError(f"speed must be positive, got {speed}")
    for chunk in chunks:
        yield chunk.t / speed, chunk.data


def replay(
    recording: Recording,
    port: VirtualSerialPort,
    *,
    speed: float,
    stop: threading.Event,
    on_chunk: Callable[[RecordedChunk], None] | None = None,
) -> int:
    """Write the recording's chunks to ``port`` on their schedule; the bytes written."""
    written = 0
    origin = time.monotonic()
    for chunk, (due, data) in zip(recording.chunks, schedule(recording.chunks, speed), strict=True):
        delay = origin + due - time.monotonic()
        if delay > 0 and stop.wait(delay):
            break
        if stop.is_set():
            break
        written += port.write(data)
        if on_chunk is not None:
            on_chunk(chunk)
    return written
