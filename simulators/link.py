"""The bus's mobile link as a TCP relay that can be cut: the agent connects to the relay,
the relay to the broker. While the link is down, open connections are closed and new
ones are closed as soon as they are accepted, as when a mobile network drops out.

Hand-written: a switchable relay is a few dozen lines of sockets; a separate tool
(socat, toxiproxy) would be an outside process to install and steer.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from urllib.parse import urlsplit

_CHUNK = 65536


class MobileLink:
    def __init__(self, broker_url: str, listen_host: str = "127.0.0.1") -> None:
        parts = urlsplit(broker_url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"{broker_url!r} is not a broker URL like mqtt://host:port")
        self._scheme = parts.scheme
        self._target = (parts.hostname, parts.port or (8883 if parts.scheme == "mqtts" else 1883))
        self._listener = socket.create_server((listen_host, 0))
        self.host = listen_host
        self.port = int(self._listener.getsockname()[1])
        self._up = threading.Event()
        self._up.set()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self.connections = 0
        self.cuts = 0
        self._thread = threading.Thread(target=self._accept, name="mobile-link", daemon=True)

    @property
    def url(self) -> str:
        """What the agent connects to instead of the broker."""
        return f"{self._scheme}://{self.host}:{self.port}"

    @property
    def up(self) -> bool:
        return self._up.is_set()

    def start(self) -> MobileLink:
        self._thread.start()
        return self

    def cut(self) -> None:
        with self._lock:
            self._up.clear()
            self.cuts += 1
            self._close_all()

    def restore(self) -> None:
        self._up.set()

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            self._close_all()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)

    def _close_all(self) -> None:
        for sock in self._open:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        self._open.clear()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                ready, _, _ = select.select([self._listener], [], [], 0.2)
                if not ready:
                    continue
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._up.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5.0)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
                self.connections += 1
            threading.Thread(
                target=self._pump, args=(client, upstream), name="mobile-link-pump", daemon=True
            ).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peer = {client: upstream, upstream: client}
        try:
            while not self._stopping.is_set():
                ready, _, _ = select.select([client, upstream], [], [], 0.2)
                for sock in ready:
                    data = sock.recv(_CHUNK)
                    if not data:
                        return
                    peer[sock].sendall(data)
        except (OSError, ValueError):
            # ValueError: select on a socket that cut() closed meanwhile.
            return
        finally:
            with self._lock:
                for sock in (client, upstream):
                    self._open.discard(sock)
                    with contextlib.suppress(OSError):
                        sock.close()
