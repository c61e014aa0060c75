"""``medicobus ingest`` processes on a real Mosquitto and PostgreSQL, fed a fleet's day:
started (together or one by one), killed as a crash would, stopped; and when every batch
sent is stored and its derived state done. For the shared-ingest test and benchmark."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from protocol.codec import encode
from protocol.models import Batch
from protocol.topics import topic_for
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.wait import wait_for

MEDICOBUS = str(Path(sys.executable).parent / "medicobus")


def last_monday() -> date:
    today = datetime.now(UTC).date()
    return today - timedelta(days=today.weekday() or 7)


class Worker:
    def __init__(self, workdir: Path, name: str, config: Path, metrics_port: int) -> None:
        self.log = workdir / f"{name}.log"
        self._config = config
        self._metrics = f"http://127.0.0.1:{metrics_port}/metrics"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, *, wait: bool = True) -> None:
        self.starts += 1
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [MEDICOBUS, "ingest", "--config", str(self._config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        if wait:
            self.wait_subscribed()

    def wait_subscribed(self) -> None:
        wait_for(
            lambda: self.log.read_text().count("subscribing to") >= self.starts,
            timeout=60,
            what=f"{self.log.name} subscribed",
        )

    def stored(self) -> float:
        """Messages this process stored (since it last started)."""
        text = httpx.get(self._metrics).text
        found = re.search(r'medicobus_ingest_messages_total\{outcome="stored"\} (\S+)', text)
        return float(found.group(1)) if found else 0.0

    def kill(self) -> None:
        """``kill -9`` of the ingest and its MQTT receiver at once, as a crash would."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError(
                f"{self.log.name} did not stop: {self.log.read_text()[-2000:]}"
            ) from None


@contextmanager
def workers(
    workdir: Path, database: str, broker: Mosquitto, itinerary: Path, count: int
) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    try:
        for i in range(count):
            config = workdir / f"ingest-{i}.toml"
            shared = 'shared_group = "ingest"\n' if count > 1 else ""
            port = free_port()
            config.write_text(
                f'database_url = "{database}"\nitinerary_file = "{itinerary}"\n{shared}'
                f"derive_every_s = 1\nmetrics_port = {port}\n"
                f'[broker]\nurl = "{broker.url}"\nclient_id = "ingest-{i}"\n'
            )
            worker = Worker(workdir, f"ingest-{i}", config, port)
            worker.start(wait=False)
            started.append(worker)
        for worker in started:
            worker.wait_subscribed()
        time.sleep(1.0)  # the subscriptions confirmed
        yield started
    finally:
        for w in started:
            w.stop()
        for w in started:
            text = w.log.read_text()
            assert "Traceback" not in text, text[-4000:]


def publish(broker: Mosquitto, batches: Sequence[Batch], on_progress: Any = None) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fleet-day")
    client.max_inflight_messages_set(200)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        pending = []
        for i, batch in enumerate(batches):
            pending.append(
                client.publish(topic_for(batch.vehicle, batch.stream), encode(batch), qos=1)
            )
            if len(pending) >= 500:
                for info in pending:
                    info.wait_for_publish(timeout=30)
                pending.clear()
            if on_progress is not None:
                on_progress(i + 1)
        for info in pending:
            info.wait_for_publish(timeout=30)
    finally:
        client.disconnect()
        client.loop_stop()


def settled(engine: sa.Engine, expected: int) -> bool:
    """Whether ``expected`` batches are stored and their derived state done: no group
    left in the backlog, no day left to rebuild."""
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT count(*) FROM batches")).scalar_one()
        backlog = conn.execute(sa.text("SELECT count(*) FROM derivation_backlog")).scalar_one()
        days = conn.execute(sa.text("SELECT count(*) FROM pending_days")).scalar_one()
    return bool(stored == expected and backlog == 0 and days == 0)
