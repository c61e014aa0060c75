"""The wire contract between the bus and the cloud: topics, payload models, codec."""

from protocol.codec import MAX_PAYLOAD_BYTES, ProtocolError, decode, encode
from protocol.models import (
    SCHEMA_VERSION,
    Batch,
    EnergyBatch,
    EnergySample,
    EventBatch,
    EventSample,
    FridgeBatch,
    FridgeSample,
    GpsBatch,
    GpsSample,
    ObdBatch,
    ObdSample,
    StatusBatch,
    StatusSample,
    Stream,
)
from protocol.topics import STREAMS, TOPIC_PREFIX, TopicError, parse_topic, topic_for

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "SCHEMA_VERSION",
    "STREAMS",
    "TOPIC_PREFIX",
    "Batch",
    "EnergyBatch",
    "EnergySample",
    "EventBatch",
    "EventSample",
    "FridgeBatch",
    "FridgeSample",
    "GpsBatch",
    "GpsSample",
    "ObdBatch",
    "ObdSample",
    "ProtocolError",
    "StatusBatch",
    "StatusSample",
    "Stream",
    "TopicError",
    "decode",
    "encode",
    "parse_topic",
    "topic_for",
]
