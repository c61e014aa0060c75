"""What every service shares: who is asking, the unit of work, the refusals, and what
counts as a control character in text people type."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from sqlalchemy.engine import Connection

from ingest.store import Store

# NUL (which PostgreSQL refuses in text), the other C0 controls, and DEL.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


class Viewer(Protocol):
    """The person (or script) a request acts for."""

    @property
    def name(self) -> str: ...

    @property
    def operator(self) -> str | None: ...

    @property
    def sees_all(self) -> bool: ...

    def sees(self, operator: str) -> bool: ...


class NotFoundError(LookupError):
    """Nothing of that name among what the caller may see (HTTP 404): another
    operator's things are not shown to exist."""


class ConflictError(Exception):
    """The request contradicts what is already recorded (HTTP 409)."""


class RefusedError(ValueError):
    """The request is well formed but the product refuses it, with the reason (HTTP
    422)."""


class NotReadyError(RuntimeError):
    """What the request needs has not been recorded yet, e.g. the ingest's settings
    before its first start (HTTP 503)."""


@contextmanager
def unit_of_work(store: Store) -> Iterator[Connection]:
    """One transaction for a command: committed when the block ends, rolled back if it
    raises (a refusal writes nothing)."""
    with store.engine.begin() as conn:
        yield conn


@contextmanager
def reading(store: Store) -> Iterator[Connection]:
    """One connection for a request's reads, so they see one state of the database."""
    with store.engine.connect() as conn:
        yield conn


def operators_seen(viewer: Viewer) -> list[str] | None:
    """The operators whose things the viewer sees: None for every operator (admins)."""
    if viewer.sees_all:
        return None
    return [] if viewer.operator is None else [viewer.operator]


def visible_vehicle_ids(store: Store, viewer: Viewer, vehicle: str | None = None) -> list[str]:
    """The viewer's vehicles, or the one named if it is theirs (NotFoundError otherwise)."""
    ids = [v.id for v in store.vehicles() if viewer.sees(v.operator)]
    if vehicle is None:
        return ids
    if vehicle not in ids:
        raise NotFoundError(f"no vehicle {vehicle!r} among yours")
    return [vehicle]
