"""The demo's embedded broker: late acknowledgements are one line, not a traceback."""

from __future__ import annotations

import logging

import pytest

from medicobus.embedded_broker import EmbeddedBroker


def test_a_late_puback_is_logged_in_one_line_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    EmbeddedBroker(port=0)  # installs the filters on amqtt's loggers
    broker_log = logging.getLogger("amqtt.broker")
    handler_log = logging.getLogger("amqtt.mqtt.protocol.handler")
    caplog.set_level(logging.INFO)
    handler_log.warning("Timeout waiting for PUBACK for packet ID 4")
    try:
        raise TimeoutError("Timeout waiting for PUBACK for packet ID 4")
    except TimeoutError:
        broker_log.exception("Task failed and will be skipped: <Task ...>")
    try:
        raise ValueError("something else")
    except ValueError:
        broker_log.exception("Task failed and will be skipped: <Task ...>")

    late = [r for r in caplog.records if "PUBACK" in r.getMessage()]
    assert len(late) == 1
    assert late[0].levelno == logging.INFO and late[0].exc_info is None
    assert "once stored" in late[0].getMessage()
    other = [r for r in caplog.records if r.exc_info]
    assert len(other) == 1 and isinstance(other[0].exc_info[1], ValueError)  # type: ignore[index]
