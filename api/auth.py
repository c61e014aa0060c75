"""Who is calling: a bearer token, or a browser's session cookie, mapped to a person, a
role and an operator.

Tokens are random secrets handed to each person; the server keeps only their SHA-256
(a fast hash is enough for high-entropy random tokens, unlike passwords, which are kept
as Argon2id hashes: :mod:`ingest.services.accounts`). A session cookie is sent by the
browser by itself, so a request that changes something must also carry the session's
CSRF token in ``X-CSRF-Token`` and, if it says its ``Origin``, come from this site.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from api.throttle import PerMinute
from ingest.services import accounts, tokens
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


# Wrong tokens and passwords an address may send a minute; past them, it is answered 429
# without any being checked until the minute has gone by.
FAILED_ATTEMPTS_PER_MINUTE = 20
# Wrong passwords for one account, from anywhere, in a quarter of an hour.
FAILED_SIGN_INS_PER_ACCOUNT = 5
ACCOUNT_WINDOW_MIN = 15

SESSION_COOKIE = "medicobus_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token(session_value: str) -> str:
    """The CSRF token of a session: derived from the cookie's secret value, so a page of
    another site, which cannot read the cookie, cannot compute it."""
    return hmac.new(session_value.encode(), b"medicobus csrf", hashlib.sha256).hexdigest()


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
        session_lifetime: timedelta = timedelta(hours=12),
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
            "too many wrong tokens or passwords from this address: try again in {wait} s",
        )
        self._account_failures = PerMinute(
            FAILED_SIGN_INS_PER_ACCOUNT,
            "sign-in",
            "too many wrong passwords for this account: try again in {wait} s",
            minutes=ACCOUNT_WINDOW_MIN,
        )
        self.session_lifetime = session_lifetime

    def check_address(self, address: str) -> None:
        """429 for an address that sent too many wrong tokens this last minute."""
        self._failures.check(address)

    def failed(self, address: str) -> None:
        self._failures.record(address)

    def check_account(self, email: str) -> None:
        """429 for an account that was given too many wrong passwords lately."""
        self._account_failures.check(email.strip().lower())

    def failed_account(self, email: str) -> None:
        self._account_failures.record(email.strip().lower())

    def still_allowed(self, request: Request) -> bool:
        """Whether the credentials a request came with still hold: for long streams."""
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if header and scheme.lower() == "bearer":
            return self.authenticate(value.strip()) is not None
        cookie = request.cookies.get(SESSION_COOKIE)
        return cookie is not None and self.session(cookie) is not None

    def session(self, value: str) -> accounts.SignedIn | None:
        """The account of an open session cookie, and when its session ends."""
        if self._store is None:
            return None
        return accounts.session(self._store, value, self._clock.now())

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
        authenticator: Authenticator = request.app.state.authenticator
        address = client_address(request)
        cookie = request.cookies.get(SESSION_COOKIE)
        if credentials is None and cookie:
            signed = authenticator.session(cookie)
            if signed is None:
                raise HTTPException(
                    status_code=401, detail="the session has ended or expired: sign in again"
                )
            if request.method not in SAFE_METHODS:
                _check_csrf(request, cookie)
            # Kept for the route that says who is signed in, rather than read again.
            request.state.signed_in = signed
            account = signed.account
            principal = Principal(account.name, Role(account.role), account.operator)
        elif credentials is None:
            raise HTTPException(
                status_code=401,
                detail="missing bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        else:
            authenticator.check_address(address)
            by_token = authenticator.authenticate(credentials.credentials)
            if by_token is None:
                authenticator.failed(address)
                raise HTTPException(
                    status_code=401,
                    detail="invalid token",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            principal = by_token
        if principal.role is not Role.ADMIN and principal.role not in roles:
            allowed = ", ".join(r.value for r in roles) or "admin"
            raise HTTPException(
                status_code=403, detail=f"role {principal.role.value} may not do this ({allowed})"
            )
        return replace(principal, address=address)

    return dependency


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _check_csrf(request: Request, cookie: str) -> None:
    """A change asked with a session cookie: the session's CSRF token in its header, and,
    where the browser names the page's origin, this site's own."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise HTTPException(status_code=403, detail=f"requests from {origin[:100]} are refused")
    given = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(given.encode(), csrf_token(cookie).encode()):
        raise HTTPException(
            status_code=403, detail=f"missing or wrong {CSRF_HEADER}: reload the page"
        )
