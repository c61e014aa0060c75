"""The MQTT side of the ingest: a persistent QoS 1 session, acknowledging after commit."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Final

from firmware_config.agent import BrokerConfig
from ingest import receiver
from ingest.confirmation import StoredLedger, StoredSeqs, handled_batch, handled_of
from ingest.pipeline import Ingestor, Message, Outcome
from protocol.clock import Clock, SystemClock
from protocol.topics import confirmation_topic, subscription

log = logging.getLogger(__name__)

# Messages committed in one transaction, and their bytes: a group only grows this large
# while a backlog drains, where each transaction's fixed costs (a commit, each vehicle's
# live state) spread over more messages; the bytes bound what a group holds in memory.
MAX_GROUP: Final = 5000
MAX_GROUP_BYTES: Final = 32 * 1024 * 1024
MAX_RETRY_DELAY_S: Final = 30.0
FIRST_RESTART_DELAY_S: Final = 1.0
# A bus's confirmation is published at most this often: the bus waits much longer
# before it re-sends, and a fleet's confirmations stay a small share of the traffic.
CONFIRM_EVERY_S: Final = 1.0


class IngestSubscriber:
    """Receives every vehicle's telemetry and feeds the :class:`Ingestor`.

    The session is persistent (``clean_session=False``, fixed client id): what arrives
    while the ingest is down waits in the broker. The MQTT client runs in a process of
    its own (:mod:`ingest.receiver`), so that parsing packets does not compete with
    validation and storage for the interpreter; a writer thread here commits what it
    passes on, in groups, and then has it acknowledge each message. If the store fails,
    the group is retried and nothing is acknowledged before it commits; if the process
    dies, the broker delivers the unacknowledged messages again and the store drops the
    ones it already has.

    After each commit, each bus whose batches were handled is told, on its own retained
    confirmation topic and through the receiver, up to which seq of each stream it may
    delete its copies (:mod:`ingest.confirmation`); ``stored_seqs`` reads the stored
    batches when memory does not say (after a restart).

    With ``shared_group`` several ingest processes share the load through an MQTT
    shared subscription (``$share/<group>/...``), each with its own client id.
    """

    def __init__(
        self,
        ingestor: Ingestor,
        broker: BrokerConfig,
        clock: Clock | None = None,
        shared_group: str | None = None,
        stored_seqs: StoredSeqs | None = None,
    ) -> None:
        self._ingestor = ingestor
        self._stored_seqs = stored_seqs
        self._ledger = StoredLedger()
        self._confirm_due: set[str] = set()
        self._next_confirm: dict[str, float] = {}
        self._confirm_all = False
        self._clock = clock or SystemClock()
        topic = subscription()
        if shared_group:
            topic = f"$share/{shared_group}/{topic}"
        self._config = receiver.ReceiverConfig(
            broker, topic, log_level=logging.getLogger().getEffectiveLevel()
        )
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._drained = False
        self._backlog = 0
        self._restart_delay = FIRST_RESTART_DELAY_S
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)
        self._process: subprocess.Popen[bytes] | None = None
        self._from_receiver: Connection | None = None
        self._to_receiver: Connection | None = None

    def _start_receiver(self) -> None:
        # A plain child process running ``python -m ingest.receiver``, rather than
        # multiprocessing's spawn, which would import the parent's main module again.
        self._from_receiver, receiver_out = multiprocessing.Pipe(duplex=False)
        receiver_in, self._to_receiver = multiprocessing.Pipe(duplex=False)
        fds = (receiver_in.fileno(), receiver_out.fileno())
        self._process = subprocess.Popen(
            [sys.executable, "-m", "ingest.receiver", *map(str, fds)], pass_fds=fds
        )
        # The receiver holds its ends now: if either process dies, the other sees the
        # pipe close.
        receiver_in.close()
        receiver_out.close()
        self._to_receiver.send(self._config)

    def _restart_receiver(self) -> None:
        """The receiver died: start another. What it had passed on but not acknowledged
        comes again from the broker, and the store drops what it already has.

        A receiver that dies again before it subscribes (a broken installation, say)
        is restarted after twice the previous pause, up to ``MAX_RETRY_DELAY_S``.
        """
        log.error(
            "the ingest's MQTT receiver stopped; starting another in %.0f s", self._restart_delay
        )
        self.connected.clear()
        self._reap_receiver(wait_s=5)
        if self._stop.wait(self._restart_delay):
            return  # stopping: the write loop ends on the closed pipe
        self._restart_delay = min(self._restart_delay * 2, MAX_RETRY_DELAY_S)
        self._start_receiver()

    @property
    def receiver_pid(self) -> int | None:
        """The process holding the MQTT session."""
        return self._process.pid if self._process is not None else None

    def _take(self, timeout: float) -> list[tuple[int, int, str, bytes]]:
        """What the receiver passed on: up to ``MAX_GROUP`` messages or
        ``MAX_GROUP_BYTES`` of payloads (passed on in sends of up to
        :data:`ingest.receiver.MAX_SEND`, a group may end past either by one send),
        waiting at most ``timeout`` for the first. Link changes are applied on the way."""
        assert self._from_receiver is not None
        group: list[tuple[int, int, str, bytes]] = []
        size = 0
        wait = timeout
        while len(group) < MAX_GROUP and size < MAX_GROUP_BYTES and self._from_receiver.poll(wait):
            kind, body = self._from_receiver.recv()
            if kind == "messages":
                group.extend(body)
                size += sum(len(m[3]) for m in body)
                wait = 0
            elif kind == "ready":
                (self.connected.set if body else self.connected.clear)()
                if body:
                    self._restart_delay = FIRST_RESTART_DELAY_S
                    # The broker may have lost its retained messages with its disk.
                    self._confirm_all = True
            elif kind == "drained":
                self._drained = True
                break
        return group

    def _write_loop(self) -> None:
        while not self._drained:
            try:
                group = self._take(0.2)
            except (EOFError, OSError):
                if self._stop.is_set():
                    return
                self._restart_receiver()
                continue
            if not group:
                self._confirm()
                self._ingestor.housekeep()
                continue
            received_at = self._clock.now()
            self._backlog = len(group)
            messages = [Message(topic, payload, received_at) for _, _, topic, payload in group]
            delay = 0.5
            while True:
                try:
                    outcomes = self._ingestor.handle_many(messages)
                    break
                except Exception:
                    if self._stop.is_set():
                        log.error("store unavailable at shutdown; %d messages left", len(group))
                        return
                    log.exception("store failed; retrying %d messages in %.1f s", len(group), delay)
                    time.sleep(delay)
                    delay = min(delay * 2, MAX_RETRY_DELAY_S)
            self._backlog = 0
            self._acknowledge(group)
            self._note_handled(group, outcomes)
            self._confirm()
            self._ingestor.housekeep()
        self._confirm(at_once=True)

    def _acknowledge(self, group: list[tuple[int, int, str, bytes]]) -> None:
        # If the receiver died, the broker delivers these again to the next one.
        self._tell_receiver("ack", [(mid, qos) for mid, qos, _, _ in group])

    def _note_handled(
        self, group: list[tuple[int, int, str, bytes]], outcomes: list[Outcome]
    ) -> None:
        try:
            for (_, _, topic, payload), outcome in zip(group, outcomes, strict=True):
                handled = (
                    handled_of(outcome.batch)
                    if outcome.batch is not None
                    else handled_batch(topic, payload, outcome.status, outcome.reason)
                )
                if handled is not None:
                    self._ledger.note(handled)
        except Exception:
            # Confirmations must never stop the flow: the buses re-send, and wait.
            log.exception("could not account for %d handled messages", len(group))

    def _confirm(self, at_once: bool = False) -> None:
        """Publish the confirmations that moved, each bus at most every
        ``CONFIRM_EVERY_S`` (all of them at once when stopping)."""
        try:
            if self._stored_seqs is not None:
                for vehicle, stream, first in self._ledger.to_look_up():
                    seqs = self._stored_seqs(vehicle, stream, first)
                    self._ledger.add_handled(vehicle, stream, seqs)
            self._confirm_due |= self._ledger.changed()
            if self._confirm_all:
                self._confirm_due |= self._ledger.vehicles()
                self._confirm_all = False
            now = time.monotonic()
            out: list[tuple[str, bytes]] = []
            for vehicle in sorted(self._confirm_due):
                if not at_once and now < self._next_confirm.get(vehicle, 0.0):
                    continue
                self._confirm_due.discard(vehicle)
                self._next_confirm[vehicle] = now + CONFIRM_EVERY_S
                confirmation = self._ledger.confirmation(vehicle)
                if confirmation is not None:
                    topic = confirmation_topic(vehicle)
                    out.append((topic, confirmation.model_dump_json().encode()))
            if out:
                self._tell_receiver("publish", out)
        except Exception:
            log.exception("could not publish the stored confirmations")

    @property
    def backlog(self) -> int:
        """Messages received but not yet committed."""
        return self._backlog

    def start(self) -> None:
        self._start_receiver()
        self._writer.start()

    def stop(self) -> None:
        """Stop taking messages, commit and acknowledge those taken, then disconnect.

        The subscription stays in the broker's persistent session, so what is published
        while the ingest is down waits for it.
        """
        self._stop.set()
        self._tell_receiver("stop")
        self._writer.join(timeout=30)
        self._tell_receiver("close")
        self._reap_receiver(wait_s=10)
        self.connected.clear()

    def _tell_receiver(self, what: str, body: object = None) -> None:
        if self._to_receiver is not None:
            with contextlib.suppress(OSError):  # the receiver may be gone already
                self._to_receiver.send((what, body))

    def _reap_receiver(self, wait_s: float) -> None:
        """Wait for the receiver to exit, and end it if it does not within ``wait_s``."""
        if self._process is None:
            return
        try:
            self._process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
