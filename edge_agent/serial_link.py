"""Keeps a serial port open for a reader: opens it, reopens it with back-off when it
disappears (a USB adapter unplugged), and never gives up until told to stop."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Final

import serial

from edge_agent.counters import DeviceCounters

log = logging.getLogger(__name__)

READ_TIMEOUT_S: Final = 0.2
FIRST_BACKOFF_S: Final = 1.0
MAX_BACKOFF_S: Final = 30.0


def keep_port_open(
    name: str,
    port: str,
    baudrate: int,
    read: Callable[[serial.Serial], None],
    *,
    stop: threading.Event,
    counters: DeviceCounters,
) -> None:
    """Call ``read`` with the open port until ``stop`` is set; ``read`` returns when
    ``stop`` is set and raises when the port fails. Port failures count as
    ``port_errors``."""
    backoff = FIRST_BACKOFF_S
    while not stop.is_set():
        try:
            with serial.Serial(port, baudrate, timeout=READ_TIMEOUT_S) as opened:
                log.info("%s port %s open", name, port)
                backoff = FIRST_BACKOFF_S
                read(opened)
        except (serial.SerialException, OSError) as exc:
            counters.add("port_errors")
            log.warning("%s port %s: %s; retrying in %.0f s", name, port, exc, backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
