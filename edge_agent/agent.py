"""The agent process: devices in, outbox on disk, batches out.

Readers call :meth:`Agent.record` from their own threads. Once per commit interval
the agent's thread writes what was recorded to the outbox in one transaction, in
which it also deletes the batches the ingest confirmed since the last commit,
applies the size bound and, when the link is up, forms the next batches. Then it
hands formed batches to paho, oldest first, never more than ``max_inflight`` awaiting
the broker's PUBACK at a time, and more as PUBACKs come in.

A PUBACK says only that the broker has the message, and a broker that crashes loses
what it had not yet saved. So a batch stays on disk until the ingest's confirmation
(retained, on the bus's own topic) says it is stored; one the broker took but the
ingest has not confirmed ``confirm_timeout_s`` later is sent again, same seq, waiting
twice as long after each attempt up to ``confirm_timeout_max_s``. The status reports
carry the outbox's floor per stream (``held_from``), so that seqs the bus will never
send (evicted, or a last will the broker did not need) do not hold the confirmation
back. Starting adds one commit (the first last will's number), stopping up to two.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Final

from edge_agent.batching import Sample
from edge_agent.counters import DeviceCounters
from edge_agent.engine import EngineWatch
from edge_agent.fridge_reader import FridgeReader
from edge_agent.gps_reader import GpsReader
from edge_agent.obd_reader import ObdReader
from edge_agent.outbox import Outbox, OutboxLimits, StoredBatch
from edge_agent.publisher import Acknowledged, Confirmed, LinkEvent, LinkUp, MqttPublisher
from edge_agent.sampling import FixDecimator
from edge_agent.supervisor import Supervisor
from edge_agent.vedirect_reader import VeDirectReader
from firmware_config.agent import AgentConfig
from firmware_config.vedirect import VeDirectPortConfig
from protocol.clock import Clock, SystemClock
from protocol.models import (
    EnergySample,
    EventSample,
    GpsSample,
    StatusBatch,
    StatusSample,
    Stream,
)

log = logging.getLogger(__name__)

# Samples kept in memory while the disk refuses writes; beyond that the oldest go.
MAX_PENDING_SAMPLES: Final = 100_000
# How long stopping waits for the broker to acknowledge what was sent.
SHUTDOWN_GRACE_S: Final = 5.0
# Longest wait for a link event, so a stop request is noticed promptly.
EVENT_POLL_S: Final = 0.2


class Agent:
    def __init__(self, config: AgentConfig, clock: Clock | None = None) -> None:
        self.config = config
        self._clock = clock or SystemClock()
        self._outbox = Outbox(
            config.state_dir / "outbox.sqlite",
            config.vehicle,
            OutboxLimits(
                max_bytes=config.outbox.max_bytes,
                max_batch_samples=config.outbox.max_batch_samples,
            ),
        )
        self._max_inflight = config.outbox.max_inflight
        # Batches formed ahead of sending: enough to keep the link busy during a
        # catch-up, few enough that a backlog still leaves in large batches.
        self._max_formed = 2 * config.outbox.max_inflight
        self._pending: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._started = False
        self._closed = False
        # Link and outbox counters; devices have their own, reported under their name.
        self.counters = DeviceCounters()
        self.gps_counters = DeviceCounters()
        self.device_counters: dict[str, DeviceCounters] = {"gps": self.gps_counters}
        # Every reader runs under one supervisor: whatever ends a reader is counted
        # under its device, with the error, and the reader runs again.
        self._readers = Supervisor()
        if config.gps is not None:
            decimator = FixDecimator(config.gps.keep_every_s)

            def record_fix(fix: GpsSample) -> None:
                if decimator.keep(fix):
                    self.record(fix)
                else:
                    self.gps_counters.add("gps_fixes_thinned")

            gps = GpsReader(config.gps, record_fix, self.gps_counters, self._clock)
            self._readers.add("gps", gps.run, self.gps_counters)
        for port in config.vedirect:
            name = f"vedirect_{port.device}"
            if name in self.device_counters:
                name = f"{name}_{len(self.device_counters)}"
            counters = self.device_counters[name] = DeviceCounters()
            vedirect = VeDirectReader(port, self._energy_recorder(port), counters, self._clock)
            self._readers.add(name, vedirect.run, counters)
        if config.fridge is not None:
            counters = self.device_counters["fridge"] = DeviceCounters()
            fridge = FridgeReader(
                config.fridge, self.record, self.record_event, counters, self._clock
            )
            self._readers.add("fridge", fridge.run, counters)
        if config.obd is not None:
            counters = self.device_counters["obd"] = DeviceCounters()
            obd = ObdReader(config.obd, self.record, counters, self._clock)
            self._readers.add("obd", obd.run, counters)
        self._publisher = MqttPublisher(config.vehicle, config.broker, self._max_inflight)
        self._sent: dict[int, int] = {}  # paho mid -> batch id, handed over, not acknowledged
        self._sent_up_to = 0  # batches are handed over in id order; the last one handed
        # Batch id -> (when to send it again, attempts so far), for every batch handed
        # over and not yet confirmed.
        self._awaiting: dict[int, tuple[float, int]] = {}
        self._confirmed: dict[Stream, int] = {}  # the ingest's latest word, per stream
        self._confirmation_new = False
        self._will_due = True
        self._link_changed = False
        self._thread = threading.Thread(target=self._run, name="agent", daemon=True)

    def _energy_recorder(self, port: VeDirectPortConfig) -> Callable[[EnergySample], None]:
        """Records energy samples, and engine on/off events from the starter battery."""
        if port.engine_running_above_v is None:
            return self.record
        watch = EngineWatch(port.engine_running_above_v, port.engine_stopped_below_v)

        def record(sample: EnergySample) -> None:
            self.record(sample)
            if sample.starter_voltage_v is not None:
                change = watch.feed(sample.starter_voltage_v)
                if change is not None:
                    detail = f"starter battery at {sample.starter_voltage_v:.2f} V"
                    self.record(EventSample(t=sample.t, kind=change, detail=detail))

        return record

    @property
    def outbox_depth(self) -> int:
        """Samples recorded and not yet confirmed by the ingest."""
        with self._lock:
            in_memory = len(self._pending)
        return self._outbox.depth + in_memory

    @property
    def connected(self) -> bool:
        return self._publisher.connected

    def record(self, sample: Sample) -> None:
        """Keep one sample for sending; thread-safe, never blocks on disk or network."""
        with self._lock:
            if len(self._pending) >= MAX_PENDING_SAMPLES:
                del self._pending[0]
                self.counters.add("outbox.dropped_in_memory")
            self._pending.append(sample)

    def record_event(self, kind: str, detail: str = "") -> None:
        """Keep something that happened on the bus (a device lost, found again, ...)."""
        self.record(EventSample(t=self._clock.now(), kind=kind[:64], detail=detail[:1024]))

    def start(self) -> None:
        """Start devices, publisher and the agent's thread."""
        self._started = True
        self._outbox.number_streams()
        self._commit(status=False, form=False)  # numbers the first last will
        self._publisher.start()
        self._readers.start()
        self._thread.start()

    def stop(self) -> None:
        """Stop devices, send what can be sent in a few seconds, and close the outbox.

        What is not acknowledged by then stays in the outbox for the next start.
        """
        if self._closed:
            return
        self._closed = True
        self._readers.stop()
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30.0)
        if self._started:
            self.record(self._status_sample(online=False))
            self._commit(status=False, form=True)
            deadline = time.monotonic() + SHUTDOWN_GRACE_S
            while self._sent and self.connected and time.monotonic() < deadline:
                self._handle_events(min(deadline, time.monotonic() + EVENT_POLL_S), final=True)
            if self._confirmation_new:
                self._commit(status=False, form=False)
            self._publisher.stop()
        self._outbox.close()

    def _run(self) -> None:
        interval = self.config.outbox.commit_interval_s
        window = self.config.batch_window_s
        now = time.monotonic()
        next_commit, next_form, next_status = now + interval, now, now
        while not self._stop.is_set():
            self._handle_events(next_commit)
            now = time.monotonic()
            if self._stop.is_set() or now < next_commit:
                continue
            # Forming is due once a window has passed, give or take half a commit.
            form = now + interval / 2 >= next_form
            status = now >= next_status or self._link_changed
            self._commit(status=status, form=form)
            if form:
                next_form = now + window
            if status:
                next_status = now + self.config.status_interval_s
                self._link_changed = False
            # From this commit's start: commits never come closer than the interval.
            next_commit = now + interval

    def _handle_events(self, until: float, final: bool = False) -> None:
        """Take paho's reports until ``until`` (monotonic) or a stop request (unless
        ``final``), handing out batches as the window of unacknowledged ones frees up."""
        while final or not self._stop.is_set():
            timeout = min(until - time.monotonic(), EVENT_POLL_S)
            if timeout <= 0:
                return
            try:
                event = self._publisher.events.get(timeout=timeout)
            except queue.Empty:
                continue
            self._on_event(event)
            self._hand_out()

    def _wait_after(self, attempts: int) -> float:
        timeout = self.config.outbox.confirm_timeout_s * 2.0 ** min(attempts, 32)
        return min(timeout, max(self.config.outbox.confirm_timeout_max_s, 1.0))

    def _on_event(self, event: LinkEvent) -> None:
        if isinstance(event, Acknowledged):
            batch_id = self._sent.pop(event.mid, None)
            if batch_id is None:
                return
            if event.refused is not None:
                # Kept in the outbox: it goes again after the next start.
                self.counters.add("link.refused")
                self._awaiting.pop(batch_id, None)
                log.error("the broker refused batch %d: %s", batch_id, event.refused)
                return
            if batch_id in self._awaiting:
                _, attempts = self._awaiting[batch_id]
                self._awaiting[batch_id] = (time.monotonic() + self._wait_after(attempts), attempts)
        elif isinstance(event, Confirmed):
            if event.stored is None:
                self.counters.add("link.confirmations_refused")
                log.warning("ignored a message on the confirmation topic: %s", event.refused)
                return
            self.counters.add("link.confirmations")
            for stream, upto in event.stored.items():
                if upto > self._confirmed.get(stream, -1):
                    self._confirmed[stream] = upto
                    self._confirmation_new = True
        elif isinstance(event, LinkUp):
            self.counters.add("link.connects")
            self._link_changed = True
            # The will of this connection may be published: number a new one for the next.
            self._will_due = True
        else:
            self.counters.add("link.losses")
            self._link_changed = True

    def _hand_out(self) -> None:
        if not self._publisher.connected:
            return
        self._send_again()
        room = self._max_inflight - len(self._sent)
        if room <= 0:
            return
        for batch in self._outbox.batches_after(self._sent_up_to, room):
            if not self._send(batch, attempts=0):
                return
            self._sent_up_to = batch.id

    def _send(self, batch: StoredBatch, attempts: int) -> bool:
        # A status report sent again is older than the one the broker retains now.
        retain = batch.stream == "status" and attempts == 0
        mid = self._publisher.publish(batch.stream, batch.payload, retain=retain)
        if mid is None:
            return False
        self._sent[mid] = batch.id
        # Until its PUBACK comes, the wait runs from now: a PUBACK paho never gets (a
        # session the broker forgot) must not keep the batch from going again.
        self._awaiting[batch.id] = (time.monotonic() + self._wait_after(attempts), attempts)
        return True

    def _send_again(self) -> None:
        """Send again the batches whose confirmation is overdue, as the window allows."""
        now = time.monotonic()
        due = [i for i, (at, _) in self._awaiting.items() if at <= now]
        room = self._max_inflight - len(self._sent)
        if not due or room <= 0:
            return
        due = sorted(due)[:room]
        found = {b.id: b for b in self._outbox.batches_by_id(due)}
        for batch_id in due:
            batch = found.get(batch_id)
            if batch is None:  # confirmed or evicted meanwhile
                self._awaiting.pop(batch_id, None)
                continue
            # A copy still in paho's hands is superseded: its mid no longer counts.
            for mid in [m for m, b in self._sent.items() if b == batch_id]:
                del self._sent[mid]
            _, attempts = self._awaiting[batch_id]
            if not self._send(batch, attempts + 1):
                return
            self.counters.add("link.sent_again")

    def _commit(self, status: bool, form: bool) -> None:
        with self._lock:
            samples, self._pending = self._pending, []
        if status:
            samples.append(self._status_sample(online=self._publisher.connected))
        confirmed = dict(self._confirmed) if self._confirmation_new else {}
        self._confirmation_new = False
        will_seq: int | None = None
        try:
            with self._outbox.transaction() as tx:
                tx.add(samples)
                removed = tx.remove_confirmed(confirmed)
                evicted = tx.evict()
                if self._will_due:
                    will_seq = tx.take_seq("status")
                if form and self._publisher.connected:
                    tx.form_batches(self._max_formed - tx.tally.batches)
        except Exception as exc:
            # A full or failing card: keep the samples in memory and try again next time.
            self.counters.add("outbox.commit_errors")
            log.error(
                "outbox commit failed (%s); keeping %d sample(s) in memory",
                exc,
                len(samples),
                exc_info=not isinstance(exc, sqlite3.Error),
            )
            with self._lock:
                self._pending[:0] = samples
            self._confirmation_new = self._confirmation_new or bool(confirmed)
            return
        for batch_id in removed:
            self._awaiting.pop(batch_id, None)
        for stream, n in evicted.items():
            self.counters.add(f"outbox.evicted.{stream}", n)
        if tx.rejected:
            self.counters.add("outbox.rejected", tx.rejected)
        if will_seq is not None:
            will = self._status_sample(online=False)
            self._publisher.set_will(
                StatusBatch(vehicle=self.config.vehicle, seq=will_seq, samples=[will])
            )
            self._will_due = False
        self._hand_out()

    def _status_sample(self, online: bool) -> StatusSample:
        counters: dict[str, int] = {}
        errors: dict[str, str] = {}
        for device, device_counters in self.device_counters.items():
            for name, value in device_counters.snapshot().items():
                counters[f"{device}.{name}"] = value
            if device_counters.last_error is not None:
                errors[device] = device_counters.last_error
        counters.update(self.counters.snapshot())
        return StatusSample(
            t=self._clock.now(),
            online=online,
            queue_depth=self.outbox_depth,
            counters=counters,
            errors=errors,
            held_from=self._outbox.held_from(),
        )
