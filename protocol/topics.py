"""The one topic builder.

* ``medicobus/v1/<vehicle>/<stream>``: telemetry, written by the bus only.
* ``medicobus/stored/v1/<vehicle>``: what the ingest has stored of that bus's batches
  (:class:`~protocol.models.StoredConfirmation`), written by the ingest only and read by
  that bus only. It lives outside ``medicobus/v1/`` so that no bus's right to write under
  its own telemetry topics covers it, and the ingest's subscription to telemetry does
  not receive it.
"""

from __future__ import annotations

import functools
import re
from typing import Final, get_args

from protocol.models import VEHICLE_ID_PATTERN, Stream

TOPIC_PREFIX: Final = "medicobus/v1"
CONFIRMATION_PREFIX: Final = "medicobus/stored/v1"
STREAMS: Final[tuple[Stream, ...]] = get_args(Stream)

_VEHICLE_ID = re.compile(VEHICLE_ID_PATTERN)


class TopicError(ValueError):
    """A topic that is not one of ours, with the reason."""


def is_valid_vehicle_id(vehicle: str) -> bool:
    # fullmatch: with match, the pattern's ``$`` would also take a last newline.
    return _VEHICLE_ID.fullmatch(vehicle) is not None


def topic_for(vehicle: str, stream: Stream) -> str:
    if not is_valid_vehicle_id(vehicle):
        raise TopicError(f"invalid vehicle id {vehicle!r}: use lowercase letters, digits and '-'")
    if stream not in STREAMS:
        raise TopicError(f"unknown stream {stream!r}: expected one of {', '.join(STREAMS)}")
    return f"{TOPIC_PREFIX}/{vehicle}/{stream}"


def confirmation_topic(vehicle: str) -> str:
    """Where the ingest tells ``vehicle`` what it has stored (retained)."""
    if not is_valid_vehicle_id(vehicle):
        raise TopicError(f"invalid vehicle id {vehicle!r}: use lowercase letters, digits and '-'")
    return f"{CONFIRMATION_PREFIX}/{vehicle}"


def subscription(vehicle: str = "+", stream: str = "+") -> str:
    """A subscription filter; ``+`` matches every vehicle or every stream."""
    return f"{TOPIC_PREFIX}/{vehicle}/{stream}"


# Every message's topic is parsed: a fleet's few thousand topics are kept parsed (a
# refused topic raises and is not kept).
@functools.lru_cache(maxsize=16_384)
def parse_topic(topic: str) -> tuple[str, Stream]:
    """Split a topic into (vehicle, stream) or raise :class:`TopicError`."""
    prefix = TOPIC_PREFIX + "/"
    if not topic.startswith(prefix):
        raise TopicError(f"topic {topic!r} is not under {TOPIC_PREFIX}/")
    parts = topic[len(prefix) :].split("/")
    if len(parts) != 2:
        raise TopicError(f"topic {topic!r} is not {TOPIC_PREFIX}/<vehicle>/<stream>")
    vehicle, stream = parts
    if not is_valid_vehicle_id(vehicle):
        raise TopicError(f"topic {topic!r} has an invalid vehicle id {vehicle!r}")
    for known in STREAMS:
        if stream == known:
            return vehicle, known
    raise TopicError(f"topic {topic!r} has an unknown stream {stream!r}")
