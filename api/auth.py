"""Who is calling: bearer tokens mapped to a person, a role and an operator.

Tokens are random secrets handed to each person; the server keeps only their SHA-256
(a fast hash is enough for high-entropy random tokens, unlike passwords).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from api.throttle import PerMinute
from ingest.services import tokens
from ingest.store import Store
from protocol.clock import Clock, SystemClock


class Role(StrEnum):
    FLEET_MANAGER = "fleet_manager"
    COORDINATOR = "coordinator"
    ENGINEER = "engineer"
    # The programme's funder: reads its operator's aggregate reports, nothing else.
    FUNDER = "funder"
    ADMIN = "admin"


class ApiUser(BaseModel):
    """One person allowed to call the API, as written in the API's settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    role: Role
    operator: str | None = Field(
        default=None, description="the operator whose vehicles they see; none for admins only"
    )
    token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    operator: str | None
    # Where the request came from, for the audit log.
    address: str = ""

    @property
    def sees_all(self) -> bool:
        return self.role is Role.ADMIN

    def sees(self, operator: str) -> bool:
        """Admins see every operator; everyone else only their own."""
        return self.role is Role.ADMIN or self.operator == operator


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


# Wrong tokens an address may send a minute; past them, it is answered 429 without any
# token being checked until the minute has gone by.
FAILED_ATTEMPTS_PER_MINUTE = 20


TOUCH_EVERY_S = 60.0


class Authenticator:
    """Tokens of the settings file's users, then, with ``store``, the personal tokens
    kept in the system of record (``medicobus tokens``), which are revoked at once."""

    def __init__(
        self,
        users: Sequence[ApiUser],
        failures_per_minute: int = FAILED_ATTEMPTS_PER_MINUTE,
        store: Store | None = None,
        clock: Clock | None = None,
    ) -> None:
        for user in users:
            if user.role is not Role.ADMIN and user.operator is None:
                raise ValueError(f"user {user.name!r} ({user.role}) needs an operator")
        self._users = list(users)
        self._store = store
        self._clock = clock or SystemClock()
        # A token's last use is written at most once a minute.
        self._touched: dict[int, float] = {}
        self._failures = PerMinute(
            failures_per_minute,
            "auth",
            "too many wrong tokens from this address: try again in {wait} s",
        )

    def check_address(self, address: str) -> None:
        """429 for an address that sent too many wrong tokens this last minute."""
        self._failures.check(address)

    def failed(self, address: str) -> None:
        self._failures.record(address)

    def authenticate(self, token: str) -> Principal | None:
        digest = hash_token(token)
        found = None
        for user in self._users:
            # Compare every entry in constant time so timing says nothing about tokens.
            if hmac.compare_digest(digest, user.token_sha256):
                found = user
        if found is not None:
            return Principal(found.name, found.role, found.operator)
        if self._store is None:
            return None
        stored = tokens.valid(self._store, digest)
        if stored is None:
            return None
        now = time.monotonic()
        if now - self._touched.get(stored.id, -TOUCH_EVERY_S) >= TOUCH_EVERY_S:
            self._touched[stored.id] = now
            tokens.used(self._store, stored.id, self._clock.now())
        return Principal(stored.person, Role(stored.role), stored.operator)


_bearer = HTTPBearer(auto_error=False, description="a personal API token")


def require(*roles: Role) -> Callable[..., Principal]:
    """A FastAPI dependency: the caller, if their token is valid and their role is allowed
    (admins are always allowed)."""

    def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),  # noqa: B008
    ) -> Principal:
        if credentials is None:
            raise HTTPException(
                status_code=401,
                detail="missing bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        authenticator: Authenticator = request.app.state.authenticator
        address = request.client.host if request.client else "unknown"
        authenticator.check_address(address)
        principal = authenticator.authenticate(credentials.credentials)
        if principal is None:
            authenticator.failed(address)
            raise HTTPException(
                status_code=401, detail="invalid token", headers={"WWW-Authenticate": "Bearer"}
            )
        if principal.role is not Role.ADMIN and principal.role not in roles:
            allowed = ", ".join(r.value for r in roles) or "admin"
            raise HTTPException(
                status_code=403, detail=f"role {principal.role.value} may not do this ({allowed})"
            )
        return replace(principal, address=address)

    return dependency
