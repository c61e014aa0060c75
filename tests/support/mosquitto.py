"""Starts a real Mosquitto on a free port with its own config (persistence, queues)."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(found).exists():
        raise RuntimeError("mosquitto is not installed: run the test command of the README")
    return found


class Mosquitto:
    """One broker process. ``stop()`` then ``start()`` keeps port and persistence."""

    def __init__(
        self,
        workdir: Path,
        extra_config: str = "",
        max_inflight: int = 1000,
        *,
        autosave_interval: int = 1,
        users: dict[str, str] | None = None,
        acl_file: Path | None = None,
    ) -> None:
        """``users`` (name: password) turns anonymous access off; ``acl_file`` applies an
        ACL such as ``deploy/medicobus.acl``; ``autosave_interval`` 30 is the deployed
        one (a ``kill`` loses what the broker took since its last save)."""
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host = "127.0.0.1"
        self.config = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        access = ["allow_anonymous true"]
        if users is not None:
            passwords = workdir / "passwd"
            passwords.write_text("".join(f"{u}:{p}\n" for u, p in users.items()))
            subprocess.run(["mosquitto_passwd", "-U", str(passwords)], check=True)
            access = ["allow_anonymous false", f"password_file {passwords}"]
        if acl_file is not None:
            access.append(f"acl_file {acl_file}")
        self.config.write_text(
            "\n".join(
                [
                    f"listener {self.port} 127.0.0.1",
                    *access,
                    "persistence true",
                    f"persistence_location {workdir}/",
                    f"autosave_interval {autosave_interval}",
                    "max_queued_messages 1000000",
                    f"max_inflight_messages {max_inflight}",
                    f"log_dest file {self.log}",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    f"user {getpass.getuser()}",
                    extra_config,
                ]
            )
            + "\n"
        )
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> Mosquitto:
        self._proc = subprocess.Popen(
            [mosquitto_binary(), "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                raise RuntimeError(f"mosquitto exited: {err} {self.log_text()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port}: {self.log_text()}")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash or a power cut: what was not saved is lost."""
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
        self._proc = None

    def wipe(self) -> None:
        """Lose the persistence file, as a disk replaced."""
        for saved in self.workdir.glob("*.db"):
            saved.unlink()

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""
