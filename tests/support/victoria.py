"""A real time-series server speaking InfluxDB's ``/api/v2/write``: VictoriaMetrics."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.mosquitto import free_port


def victoria_binary() -> str:
    found = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
    if not Path(found).exists():
        raise RuntimeError("victoria-metrics is not installed: run the test command of the README")
    return found


class VictoriaMetrics:
    """``stop()`` then ``start()`` keeps the port and the data."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> VictoriaMetrics:
        self._proc = subprocess.Popen(
            [
                victoria_binary(),
                f"-storageDataPath={self.workdir}",
                f"-httpListenAddr=127.0.0.1:{self.port}",
                "-retentionPeriod=100y",
                "-search.latencyOffset=0s",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=0.5).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("victoria-metrics did not start")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=15)
            self._proc = None

    def export(self, match: str) -> list[dict[str, object]]:
        """Every stored series matching ``match``, with all its values and timestamps."""
        httpx.get(f"{self.url}/internal/force_flush", timeout=10)
        response = httpx.post(f"{self.url}/api/v1/export", data={"match[]": match}, timeout=10)
        response.raise_for_status()
        return [json.loads(line) for line in response.text.splitlines() if line.strip()]
