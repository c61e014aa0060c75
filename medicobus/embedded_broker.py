"""An in-process MQTT broker (amqtt) for the one-process demo; production uses Mosquitto."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from typing import Any

from amqtt.broker import Broker


class _LateAcknowledgement(logging.Filter):
    """Turns amqtt's traceback for a late PUBACK into one line.

    amqtt waits 5 s (a constant in amqtt 0.12) for a subscriber's PUBACK, then forgets
    the delivery and logs a traceback. The ingest acknowledges a message only once it
    is stored, which takes longer while it catches up with a day's backlog. The PUBLISH
    has reached the ingest by then, and a batch that were not stored would stay
    unconfirmed and be sent again by its agent, so nothing is lost: say so plainly.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, TimeoutError) and "PUBACK" in str(exc):
            record.msg = "embedded broker: %s (the ingest acknowledges once stored)"
            record.args = (str(exc),)
            record.exc_info = None
            record.exc_text = None
            record.levelno = logging.INFO
            record.levelname = "INFO"
        elif record.name == "amqtt.mqtt.protocol.handler" and "PUBACK" in record.getMessage():
            return False  # the line above says it once
        return True


class EmbeddedBroker:
    """Runs an amqtt broker on its own event loop in a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="broker", daemon=True)
        self._broker: Broker | None = None
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        for name in ("amqtt.broker", "amqtt.mqtt.protocol.handler"):
            logging.getLogger(name).addFilter(_LateAcknowledgement())

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def _config(self) -> dict[str, Any]:
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }

    async def _start(self) -> None:
        self._broker = Broker(self._config())
        await self._broker.start()

    def start(self) -> EmbeddedBroker:
        self._thread.start()
        future: Future[None] = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        future.result(timeout=15)
        return self

    def stop(self) -> None:
        if self._broker is not None:
            broker = self._broker
            asyncio.run_coroutine_threadsafe(broker.shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
