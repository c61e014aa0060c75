"""Shared request dependencies: the store, the clock."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ingest.store import Store
from protocol.clock import Clock, SystemClock


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_clock(request: Request) -> Clock:
    """The time the API works with: the app's clock if it was given one, else the
    system's."""
    clock: Clock = getattr(request.app.state, "clock", None) or SystemClock()
    return clock


ClockDep = Annotated[Clock, Depends(get_clock)]
