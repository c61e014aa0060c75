"""Hypothesis strategies for wire payloads at the limits of every field of every stream.

The fields are read from the protocol's models, so a field added there is covered here,
and a field of a kind this module does not know fails the tests that use it.
"""

from __future__ import annotations

import json
import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import annotated_types
from hypothesis import strategies as st
from pydantic import AwareDatetime, BaseModel

from protocol.models import (
    EnergySample,
    EventSample,
    FridgeSample,
    GpsSample,
    StatusSample,
    Stream,
)

SAMPLE_MODELS: dict[Stream, type[BaseModel]] = {
    "gps": GpsSample,
    "energy": EnergySample,
    "fridge": FridgeSample,
    "status": StatusSample,
    "event": EventSample,
}

INT_LIMITS = [
    0,
    -1,
    1,
    255,
    256,
    2**15 - 1,
    2**15,
    2**31 - 1,
    2**31,
    2**53 + 1,
    2**63 - 1,
    2**63,
    -(2**63),
    -(2**63) - 1,
    2**64,
    10**40,
]
FLOAT_LIMITS = [
    0.0,
    -0.0,
    5e-324,
    -5e-324,
    2.2250738585072014e-308,
    1.7976931348623157e308,
    -1.7976931348623157e308,
    float("inf"),
    float("-inf"),
    float("nan"),
]
# Times at the ends of the calendar, with offsets that push them past it once in UTC, and
# around what a signed 64-bit count of nanoseconds holds.
TIME_LIMITS = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:30:00+01:00",
    "0001-01-01T00:30:00-01:00",
    "9999-12-31T23:59:59.999999Z",
    "9999-12-31T23:59:00-01:00",
    "9999-12-31T23:59:00+01:00",
    "1677-09-21T00:12:43.145224Z",
    "2262-04-11T23:47:16.854775Z",
    "1970-01-01T00:00:00Z",
    "2026-11-23T08:00:00+23:59",
    "2026-11-23T08:00:00-23:59",
    "2026-11-23T08:00:00",
    "2026-02-30T08:00:00Z",
    "2026-11-23T23:59:60Z",
    "not a time",
]
ODD_TEXT = [
    "",
    "\x00",
    "a\x00b",
    "\x7f\x1b[31m",
    "é" * 32,
    "é" * 33,
    "🚑" * 64,
    "🚑" * 65,
    "x" * 1024,
    "x" * 1025,
    "'; DROP TABLE batches; --",
    "\u2028\ufeff\ufffd",
]


def _strip(annotation: Any) -> tuple[Any, list[Any], bool]:
    """(type, metadata, optional) of a field's annotation."""
    metadata: list[Any] = []
    optional = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation, *more = typing.get_args(annotation)
            metadata.extend(more)
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            optional = optional or len(args) < len(typing.get_args(annotation))
            if len(args) != 1:
                raise TypeError(f"no strategy for {annotation!r}")
            annotation = args[0]
        else:
            return annotation, metadata, optional


def _bounds(metadata: list[Any]) -> list[float]:
    found: list[float] = []
    for m in metadata:
        for name in ("ge", "gt", "le", "lt"):
            value = getattr(m, name, None)
            if isinstance(value, int | float) and isinstance(
                m, annotated_types.BaseMetadata | annotated_types.Interval
            ):
                found.append(float(value))
    return found


def _near(bounds: list[float]) -> list[float]:
    out: list[float] = []
    for b in bounds:
        out += [b, b - 1e-9, b + 1e-9, b - 1, b + 1]
    return out


def _times() -> st.SearchStrategy[str]:
    offsets = st.integers(-1439, 1439).map(lambda m: timezone(timedelta(minutes=m)))
    aware = st.datetimes(
        min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59), timezones=offsets
    ).map(lambda d: d.isoformat())
    recent = st.integers(-40 * 86400, 40 * 86400).map(
        lambda s: (datetime.now(UTC) + timedelta(seconds=s)).isoformat()
    )
    return st.one_of(st.sampled_from(TIME_LIMITS), aware, recent)


def value_strategy(annotation: Any, metadata: list[Any]) -> st.SearchStrategy[Any]:
    kind, more, _ = _strip(annotation)
    metadata = metadata + more
    if kind is AwareDatetime or kind is datetime:
        return _times()
    if kind is bool:
        return st.one_of(st.booleans(), st.sampled_from([0, 1, "true", "yes", 2]))
    if kind is int:
        near = [int(b) for b in _near(_bounds(metadata)) if abs(b) < 2**70]
        return st.one_of(
            st.sampled_from(INT_LIMITS + near), st.integers(), st.sampled_from([1.0, 1.5, "7"])
        )
    if kind is float:
        return st.one_of(
            st.sampled_from(FLOAT_LIMITS + _near(_bounds(metadata))),
            st.floats(),
            st.sampled_from(INT_LIMITS),
            st.sampled_from(["1.5", "Infinity", "NaN"]),
        )
    if kind is str:
        return st.one_of(st.sampled_from(ODD_TEXT), st.text(max_size=80))
    if typing.get_origin(kind) is typing.Literal:
        allowed = list(typing.get_args(kind))
        return st.sampled_from([*allowed, "other", 0, 4, None])
    if typing.get_origin(kind) is dict:
        key_type, value_type = typing.get_args(kind)
        return st.dictionaries(
            value_strategy(key_type, []), value_strategy(value_type, []), max_size=4
        )
    raise TypeError(f"no strategy for {annotation!r}")


def _limit(metadata: list[Any], *names: str) -> Any:
    for m in metadata:
        for name in names:
            value = getattr(m, name, None)
            if value is not None:
                return value
    return None


def plausible_strategy(annotation: Any, metadata: list[Any]) -> st.SearchStrategy[Any]:
    """Values the field takes in ordinary traffic, within its bounds."""
    kind, more, _ = _strip(annotation)
    metadata = metadata + more
    low, high = _limit(metadata, "ge", "gt"), _limit(metadata, "le", "lt")
    if kind is AwareDatetime or kind is datetime:
        return st.integers(-86400, 60).map(
            lambda s: (datetime.now(UTC) + timedelta(seconds=s)).isoformat()
        )
    if kind is bool:
        return st.booleans()
    if kind is int:
        return st.integers(0 if low is None else low, 10**6 if high is None else high)
    if kind is float:
        return st.floats(
            -1e6 if low is None else low,
            1e6 if high is None else high,
            allow_nan=False,
            allow_infinity=False,
            exclude_min=_limit(metadata, "gt") is not None,
            exclude_max=_limit(metadata, "lt") is not None,
        )
    if kind is str:
        return st.text(
            st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
            min_size=_limit(metadata, "min_length") or 0,
            max_size=_limit(metadata, "max_length") or 80,
        )
    if typing.get_origin(kind) is typing.Literal:
        return st.sampled_from(typing.get_args(kind))
    if typing.get_origin(kind) is dict:
        key_type, value_type = typing.get_args(kind)
        return st.dictionaries(
            plausible_strategy(key_type, []), plausible_strategy(value_type, []), max_size=4
        )
    raise TypeError(f"no strategy for {annotation!r}")


@st.composite
def sample_doc(draw: st.DrawFn, model: type[BaseModel]) -> dict[str, Any]:
    """One sample: each field absent, null, ordinary, or (one time in eight) at or past
    its limits."""
    doc: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        _, _, optional = _strip(field.annotation)
        if not field.is_required() and draw(st.integers(0, 3)) == 0:
            continue
        if optional and draw(st.integers(0, 7)) == 0:
            doc[name] = None
            continue
        pick = value_strategy if draw(st.integers(0, 7)) == 0 else plausible_strategy
        doc[name] = draw(pick(field.annotation, list(field.metadata)))
    return doc


def _seq() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.integers(0, 2**63 - 1), st.integers(0, 2**63 - 1), st.sampled_from([*INT_LIMITS, "1"])
    )


@st.composite
def batch_payload(draw: st.DrawFn, vehicle: str = "vexin-01") -> tuple[Stream, bytes]:
    """(stream, payload) of a batch whose fields are drawn at and past their limits."""
    stream = draw(st.sampled_from(sorted(SAMPLE_MODELS)))
    samples = draw(st.lists(sample_doc(SAMPLE_MODELS[stream]), min_size=1, max_size=3))
    doc = {"v": 1, "vehicle": vehicle, "stream": stream, "seq": draw(_seq()), "samples": samples}
    return stream, json.dumps(doc).encode()


def every_field_has_a_strategy() -> list[str]:
    """The fields covered, ``stream.field``; raises for a field of an unknown kind."""
    covered = []
    for stream, model in SAMPLE_MODELS.items():
        for name, field in model.model_fields.items():
            value_strategy(field.annotation, list(field.metadata))
            plausible_strategy(field.annotation, list(field.metadata))
            covered.append(f"{stream}.{name}")
    return covered
