"""Shared request dependencies: the store, the caller."""

from __future__ import annotations

from fastapi import Request

from ingest.store import Store


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store
