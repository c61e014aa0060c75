"""How the writer takes its groups from the receiver's pipe: up to a number of messages
or of payload bytes, whichever comes first, a send at a time, and nothing lost between
two groups."""

from __future__ import annotations

import multiprocessing
from typing import Any

import pytest

from firmware_config.agent import BrokerConfig
from ingest import subscriber
from ingest.subscriber import IngestSubscriber


def pipe_into(sub: IngestSubscriber) -> Any:
    ours, theirs = multiprocessing.Pipe(duplex=False)
    sub._from_receiver = ours
    return theirs


def messages(start: int, n: int, size: int) -> list[tuple[int, int, str, bytes]]:
    return [(start + i, 1, "medicobus/v1/vexin-01/gps", b"x" * size) for i in range(n)]


def subscriber_alone() -> IngestSubscriber:
    # The group is taken before any ingestor is involved.
    return IngestSubscriber(None, BrokerConfig(url="mqtt://127.0.0.1:1"))  # type: ignore[arg-type]


def test_a_group_ends_once_its_payloads_pass_the_byte_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(subscriber, "MAX_GROUP_BYTES", 10_000)
    sub = subscriber_alone()
    send = pipe_into(sub)
    for k in range(4):
        send.send(("messages", messages(k * 30, 30, 200)))  # 6 000 bytes a send
    first = sub._take(0.5)
    assert [m[0] for m in first] == list(range(60))  # two sends: 12 000 bytes
    second = sub._take(0.5)
    assert [m[0] for m in second] == list(range(60, 120))
    assert sub._take(0.05) == []


def test_a_group_ends_at_the_message_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subscriber, "MAX_GROUP", 50)
    sub = subscriber_alone()
    send = pipe_into(sub)
    for k in range(3):
        send.send(("messages", messages(k * 40, 40, 10)))
    assert len(sub._take(0.5)) == 80
    assert len(sub._take(0.5)) == 40


def test_groups_of_a_backlog_are_larger_than_one_send_and_bounded_in_bytes() -> None:
    """The constants themselves: a backlog's group spreads a transaction over several of
    the receiver's sends, and holds at most a few tens of megabytes."""
    from ingest.receiver import MAX_SEND

    assert subscriber.MAX_GROUP > MAX_SEND
    assert subscriber.MAX_GROUP_BYTES <= 64 * 1024 * 1024
