"""A virtual serial port: a pseudo-terminal whose other end a simulator drives."""

from __future__ import annotations

import errno
import os
import select
import termios
import tty


class VirtualSerialPort:
    """``path`` is a device (``/dev/pts/N``) that pyserial opens like ``/dev/ttyUSB0``.

    By default the simulator keeps the device end open too, so the port exists and
    buffers like a real UART whether or not the agent has it open. With
    ``hold_device_end=False`` it does not, so :meth:`reader_attached` can tell whether a
    program has opened the port (a player waits for its listener this way). Writes never
    block: when nobody reads and the buffer is full, bytes are dropped, as on a real wire.
    """

    def __init__(self, *, hold_device_end: bool = True) -> None:
        self._master, slave = os.openpty()
        # Raw mode: no echo, no CR/LF translation, bytes pass through unchanged.
        tty.setraw(slave, termios.TCSANOW)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(slave)
        self._slave: int | None = slave
        if not hold_device_end:
            os.close(slave)
            self._slave = None
        self.dropped_bytes = 0
        self._closed = False

    def reader_attached(self) -> bool:
        """Whether some program holds the device end open (only meaningful when this port
        does not hold it itself): the master end reads EIO while nobody does. Whatever
        the program wrote to the device meanwhile is consumed."""
        try:
            os.read(self._master, 4096)
        except BlockingIOError:
            return True
        except OSError as exc:
            if exc.errno == errno.EIO:
                return False
            raise
        return True

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
            if self._slave is not None:
                os.close(self._slave)

    def __enter__(self) -> VirtualSerialPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
