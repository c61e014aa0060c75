"""A virtual serial port: a pseudo-terminal whose other end a simulator drives."""

from __future__ import annotations

import errno
import os
import select
import termios
import tty


class VirtualSerialPort:
    """``path`` is a device (``/dev/pts/N``) that pyserial opens like ``/dev/ttyUSB0``.

    The simulator keeps the device end open too, so the port exists and buffers like a
    real UART whether or not the agent has it open. Writes never block: when nobody
    reads and the buffer is full, bytes are dropped, as on a real wire.
    """

    def __init__(self) -> None:
        self._master, self._slave = os.openpty()
        # Raw mode: no echo, no CR/LF translation, bytes pass through unchanged.
        tty.setraw(self._slave, termios.TCSANOW)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self.dropped_bytes = 0
        self._closed = False

    def write(self, data: bytes) -> int:
        written = 0
        while written < len(data):
            try:
                written += os.write(self._master, data[written:])
            except BlockingIOError:
                self.dropped_bytes += len(data) - written
                break
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EBADF):
                    self.dropped_bytes += len(data) - written
                    break
                raise
        return written

    def read(self, timeout: float = 0.0) -> bytes:
        """What the agent wrote to the device (for Modbus requests and the like)."""
        ready, _, _ = select.select([self._master], [], [], timeout)
        if not ready:
            return b""
        try:
            return os.read(self._master, 4096)
        except (BlockingIOError, OSError):
            return b""

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self._master)
            os.close(self._slave)

    def __enter__(self) -> VirtualSerialPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
