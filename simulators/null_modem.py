"""A virtual null-modem cable: two serial devices whose wires are crossed.

A pseudo-terminal has one device path, and its other end is a file descriptor, not a
port. A simulator that is itself a serial program (pymodbus's server opens a path
with pyserial) needs a second path: two ptys whose master ends a thread joins, so what
one side writes the other reads. Hand-written because pyserial has no such pair (its
``loop://`` loops one handle back to itself) and ``socat`` would be an outside process.
"""

from __future__ import annotations

import errno
import os
import select
import termios
import threading
import tty

_CHUNK = 4096


class _PtyEnd:
    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        # Raw mode: no echo, no CR/LF translation, bytes pass through unchanged.
        tty.setraw(self.slave, termios.TCSANOW)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)


class NullModem:
    """``device_path`` is for the simulated device, ``agent_path`` for the program under test.

    Both device ends stay open here as well, so each path exists and buffers like a UART
    whether or not anyone has opened it. Bytes that the far side cannot take (nobody
    reads and its buffer is full) are dropped, as on a real wire. :meth:`close` is the
    cable being pulled: whoever still has a path open gets I/O errors.
    """

    def __init__(self) -> None:
        self._device = _PtyEnd()
        self._agent = _PtyEnd()
        self.device_path = self._device.path
        self.agent_path = self._agent.path
        self.dropped_bytes = 0
        self._wake_read, self._wake_write = os.pipe()
        self._stop = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="null-modem", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        os.write(self._wake_write, b"x")
        self._thread.join(timeout=2.0)
        for fd in (self._wake_read, self._wake_write):
            os.close(fd)
        self._device.close()
        self._agent.close()

    def __enter__(self) -> NullModem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        peer = {self._device.master: self._agent.master, self._agent.master: self._device.master}
        watched = [self._device.master, self._agent.master, self._wake_read]
        while not self._stop.is_set():
            ready, _, _ = select.select(watched, [], [])
            for fd in ready:
                if fd == self._wake_read:
                    continue
                try:
                    data = os.read(fd, _CHUNK)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:
                    # Both slave ends are held open here, so EIO (no reader) is transient.
                    if exc.errno != errno.EIO:
                        raise
                    self._stop.wait(0.01)
                    continue
                self._forward(peer[fd], data)

    def _forward(self, fd: int, data: bytes) -> None:
        written = 0
        while written < len(data):
            try:
                written += os.write(fd, data[written:])
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno not in (errno.EIO, errno.EBADF):
                    raise
                break
        self.dropped_bytes += len(data) - written
