"""The agent process: devices in, batches out, one publish cycle per batch window."""

from __future__ import annotations

import logging
import threading
from collections import deque

from edge_agent.batching import Sample, make_batches
from edge_agent.counters import DeviceCounters
from edge_agent.gps_reader import GpsReader
from edge_agent.publisher import MqttPublisher, status_batch
from edge_agent.sequence import SequenceStore
from firmware_config.agent import AgentConfig
from protocol.clock import Clock, SystemClock
from protocol.models import GpsSample, StatusBatch, StatusSample

log = logging.getLogger(__name__)

STATUS_INTERVAL_S = 30.0


class Agent:
    def __init__(self, config: AgentConfig, clock: Clock | None = None) -> None:
        self.config = config
        self._clock = clock or SystemClock()
        self._seq = SequenceStore(config.state_dir / "sequence.sqlite")
        self._pending: deque[Sample] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.gps_counters = DeviceCounters()
        self._gps = GpsReader(config.gps, self._collect, self.gps_counters) if config.gps else None
        self._publisher = MqttPublisher(
            config.vehicle, config.broker, will=self._status(online=False)
        )
        self._thread = threading.Thread(target=self.run, name="agent", daemon=True)

    def _status(self, online: bool) -> StatusBatch:
        sample = StatusSample(
            t=self._clock.now(),
            online=online,
            queue_depth=len(self._pending),
            counters={f"gps.{k}": v for k, v in self.gps_counters.snapshot().items()},
        )
        return status_batch(self.config.vehicle, self._seq.next("status"), sample)

    def _collect(self, sample: GpsSample) -> None:
        with self._lock:
            self._pending.append(sample)

    def start(self) -> None:
        """Start devices, publisher and the publish loop in background threads."""
        self._publisher.start()
        if self._gps is not None:
            self._gps.start()
        self._thread.start()

    def run(self) -> None:
        next_status = 0.0
        elapsed = 0.0
        window = self.config.batch_window_s
        while not self._stop.wait(window):
            elapsed += window
            self.flush()
            if elapsed >= next_status and self._publisher.connected:
                self._publisher.publish_status(self._status(online=True))
                next_status = elapsed + STATUS_INTERVAL_S

    def flush(self) -> None:
        with self._lock:
            samples = list(self._pending)
            self._pending.clear()
        if not samples:
            return
        for batch in make_batches(self.config.vehicle, samples, self._seq.next):
            self._publisher.publish(batch)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        if self._gps is not None:
            self._gps.stop()
        self.flush()
        self._publisher.stop(final_status=self._status(online=False))
        self._seq.close()
