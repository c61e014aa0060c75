"""Personal API tokens in the system of record: made for a person with a role and an
operator, listed with their last use, revoked at once (the API asks the database for
every token it does not find in its settings file). Only the token's SHA-256 is kept."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ingest.services import audit
from ingest.services.common import NotFoundError, Viewer, reading, unit_of_work
from ingest.store import Store
from ingest.tables.access import api_tokens


@dataclass(frozen=True)
class StoredToken:
    id: int
    label: str
    person: str
    role: str
    operator: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _token(r: sa.Row[tuple[object, ...]]) -> StoredToken:
    m = r._mapping
    return StoredToken(
        int(m["id"]),
        m["label"],
        m["person"],
        m["role"],
        m["operator"],
        m["created_at"],
        m["last_used_at"],
        m["revoked_at"],
    )


def create(
    store: Store,
    actor: Viewer,
    *,
    label: str,
    person: str,
    role: str,
    operator: str | None,
    token_sha256: str,
    now: datetime,
) -> int:
    """Record a token (its hash); return its id."""
    with unit_of_work(store) as conn:
        found = conn.execute(
            api_tokens.insert().values(
                label=label,
                person=person,
                role=role,
                operator=operator,
                token_sha256=token_sha256,
                created_at=now,
            )
        ).inserted_primary_key
        assert found is not None
        token_id = int(found[0])
        audit.record(
            conn,
            actor,
            "token.create",
            f"token {token_id}",
            now,
            label=label,
            person=person,
            role=role,
            operator=operator,
        )
    return token_id


def tokens(store: Store) -> list[StoredToken]:
    with reading(store) as conn:
        return [_token(r) for r in conn.execute(sa.select(api_tokens).order_by(api_tokens.c.id))]


def revoke(store: Store, actor: Viewer, token_id: int, now: datetime) -> StoredToken:
    """Revoke a token: the next request with it is refused."""
    c = api_tokens.c
    with unit_of_work(store) as conn:
        done = conn.execute(
            api_tokens.update()
            .where(c.id == token_id, c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        row = conn.execute(sa.select(api_tokens).where(c.id == token_id)).first()
        if row is None:
            raise NotFoundError(f"no token {token_id}")
        if done.rowcount:
            audit.record(conn, actor, "token.revoke", f"token {token_id}", now)
    return _token(row)


def valid(store: Store, token_sha256: str) -> StoredToken | None:
    """The token of that hash if it is not revoked."""
    c = api_tokens.c
    query = sa.select(api_tokens).where(c.token_sha256 == token_sha256, c.revoked_at.is_(None))
    with reading(store) as conn:
        row = conn.execute(query).first()
    return None if row is None else _token(row)


def used(store: Store, token_id: int, now: datetime) -> None:
    with unit_of_work(store) as conn:
        conn.execute(
            api_tokens.update().where(api_tokens.c.id == token_id).values(last_used_at=now)
        )
