"""The one codec: JSON (UTF-8) with a size bound, and readable rejection reasons."""

from __future__ import annotations

import json
from typing import Final

from pydantic import TypeAdapter, ValidationError

from protocol.models import SCHEMA_VERSION, Batch
from protocol.topics import TopicError, parse_topic

MAX_PAYLOAD_BYTES: Final = 256 * 1024

_BATCH: TypeAdapter[Batch] = TypeAdapter(Batch)


class ProtocolError(ValueError):
    """A payload that does not follow the contract.

    ``reason`` is a short stable code (for counters), ``detail`` a sentence for people.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def encode(batch: Batch) -> bytes:
    data = batch.model_dump_json(exclude_none=True).encode()
    if len(data) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(
            "oversized", f"{len(data)} bytes encoded, over the {MAX_PAYLOAD_BYTES}-byte limit"
        )
    return data


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False)[:3]:
        where = ".".join(str(p) for p in item["loc"]) or "payload"
        parts.append(f"{where}: {item['msg']}")
    more = error.error_count() - len(parts)
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def _document(payload: bytes) -> object:
    """The payload as Python's parser reads it, or None if it cannot."""
    try:
        return json.loads(payload)
    except (ValueError, RecursionError):
        return None


def check_envelope(payload: bytes, topic: str | None) -> tuple[str, str] | None:
    """What both readings check before decoding: the size, and the topic's vehicle and
    stream (None without a topic)."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(
            "oversized", f"{len(payload)} bytes, over the {MAX_PAYLOAD_BYTES}-byte limit"
        )
    if topic is None:
        return None
    try:
        return parse_topic(topic)
    except TopicError as exc:
        raise ProtocolError("bad_topic", str(exc)) from None


def check_version(document: object) -> None:
    """A payload that could not be read, parsed as ``document``: say so if it is of
    another schema version."""
    version = document.get("v") if isinstance(document, dict) else None
    if version is not None and version != SCHEMA_VERSION:
        raise ProtocolError(
            "unsupported_version",
            f"schema version {version!r} is not supported (expected {SCHEMA_VERSION})",
        )


def check_topic(
    vehicle: str, stream: str, topic_parts: tuple[str, str] | None, topic: str | None
) -> None:
    """The payload's vehicle and stream are its topic's."""
    if topic_parts is not None and (vehicle, stream) != topic_parts:
        raise ProtocolError(
            "topic_mismatch",
            f"payload says {vehicle}/{stream} but was published on {topic}",
        )


def decode(payload: bytes, topic: str | None = None) -> Batch:
    """Decode and validate one message; raise only :class:`ProtocolError`.

    When ``topic`` is given, the vehicle and stream in the payload must match it.
    """
    topic_parts = check_envelope(payload, topic)
    try:
        batch = _BATCH.validate_json(payload, strict=True)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        if first["type"] == "json_invalid":
            raise ProtocolError("malformed_json", f"not valid JSON ({first['msg']})") from None
        check_version(_document(payload))
        raise ProtocolError("invalid_schema", _describe(exc)) from None
    check_topic(batch.vehicle, batch.stream, topic_parts, topic)
    return batch
