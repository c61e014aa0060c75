"""Accounts of people who sign in with an e-mail and a password, and their browser
sessions: added, listed, disabled (which ends their sessions at once) and given a new
password from the command line; signing in and out from the API. Passwords are kept as
Argon2id hashes (argon2-cffi, its RFC 9106 parameters); a session is a random value in an
HttpOnly cookie, of which only the SHA-256 is kept, checked against the database on every
request so that ending it, or disabling its person, takes effect on the next one."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Connection

from ingest.services import audit
from ingest.services.common import (
    CONTROL_CHARACTERS,
    ConflictError,
    NotFoundError,
    RefusedError,
    Viewer,
    reading,
    unit_of_work,
)
from ingest.store import Store
from ingest.tables.access import accounts, sessions

ROLES = ("fleet_manager", "coordinator", "engineer", "funder", "admin")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$")

_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so that the answer takes as long as for a
# known one and its timing does not tell which addresses have an account.
_UNKNOWN = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Account:
    id: int
    email: str
    name: str
    role: str
    operator: str | None
    created_at: datetime
    last_sign_in_at: datetime | None
    disabled_at: datetime | None

    @property
    def sees_all(self) -> bool:
        return self.role == "admin"

    def sees(self, operator: str) -> bool:
        return self.sees_all or self.operator == operator


@dataclass(frozen=True)
class Attempt:
    """Who is signing in, for the audit log: the e-mail given and the address."""

    name: str
    address: str
    role: str = ""
    operator: str | None = None
    sees_all: bool = False

    def sees(self, operator: str) -> bool:
        return False


@dataclass(frozen=True)
class SignedIn:
    account: Account
    expires_at: datetime


def _account(r: sa.Row[tuple[object, ...]]) -> Account:
    m = r._mapping
    return Account(
        int(m["id"]),
        m["email"],
        m["name"],
        m["role"],
        m["operator"],
        m["created_at"],
        m["last_sign_in_at"],
        m["disabled_at"],
    )


def session_digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_password() -> str:
    """A password to hand over once (about 96 bits)."""
    return secrets.token_urlsafe(12)


def normal_email(email: str) -> str:
    """The e-mail as stored and compared (trimmed, lower case), or a refusal."""
    found = email.strip().lower()
    if len(found) > 254 or not _EMAIL.match(found):
        raise RefusedError(f"{email[:60]!r} is not an e-mail address")
    return found


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise RefusedError(f"a password has at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise RefusedError(f"a password has at most {MAX_PASSWORD} characters")
    if "\x00" in password:
        raise RefusedError("a password cannot hold a NUL character")


def add(
    store: Store,
    actor: Viewer,
    *,
    email: str,
    name: str,
    role: str,
    operator: str | None,
    password: str,
    now: datetime,
) -> Account:
    """A new account; refused if the e-mail has one already."""
    email = normal_email(email)
    name = name.strip()
    if not 1 <= len(name) <= 100 or CONTROL_CHARACTERS.search(name):
        raise RefusedError("a name has 1 to 100 characters and no control character")
    if role not in ROLES:
        raise RefusedError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    if role != "admin" and not operator:
        raise RefusedError(f"a {role} needs an operator")
    check_password(password)
    digest = _hasher.hash(password)
    with unit_of_work(store) as conn:
        if conn.execute(sa.select(accounts.c.id).where(accounts.c.email == email)).first():
            raise ConflictError(f"{email} has an account already")
        conn.execute(
            accounts.insert().values(
                email=email,
                name=name,
                role=role,
                operator=operator,
                password_hash=digest,
                created_at=now,
                password_set_at=now,
            )
        )
        audit.record(
            conn, actor, "account.add", email, now, name=name, role=role, operator=operator
        )
        return _find(conn, email)


def _find(conn: Connection, email: str) -> Account:
    row = conn.execute(sa.select(accounts).where(accounts.c.email == email)).first()
    if row is None:
        raise NotFoundError(f"no account for {email}")
    return _account(row)


def listed(store: Store) -> list[Account]:
    with reading(store) as conn:
        return [_account(r) for r in conn.execute(sa.select(accounts).order_by(accounts.c.id))]


def _end_sessions(conn: Connection, account_id: int, now: datetime) -> int:
    c = sessions.c
    done = conn.execute(
        sessions.update()
        .where(c.account_id == account_id, c.ended_at.is_(None))
        .values(ended_at=now)
    )
    return int(done.rowcount or 0)


def disable(store: Store, actor: Viewer, email: str, now: datetime) -> Account:
    """Disable an account: it cannot sign in, and its open sessions end now."""
    email = normal_email(email)
    with unit_of_work(store) as conn:
        found = _find(conn, email)
        if found.disabled_at is None:
            conn.execute(accounts.update().where(accounts.c.id == found.id).values(disabled_at=now))
            ended = _end_sessions(conn, found.id, now)
            audit.record(conn, actor, "account.disable", email, now, sessions_ended=ended)
        return _find(conn, email)


def reset(store: Store, actor: Viewer, email: str, password: str, now: datetime) -> Account:
    """A new password (the account is enabled again); every open session ends."""
    email = normal_email(email)
    check_password(password)
    digest = _hasher.hash(password)
    with unit_of_work(store) as conn:
        found = _find(conn, email)
        conn.execute(
            accounts.update()
            .where(accounts.c.id == found.id)
            .values(password_hash=digest, password_set_at=now, disabled_at=None)
        )
        ended = _end_sessions(conn, found.id, now)
        audit.record(conn, actor, "account.reset", email, now, sessions_ended=ended)
        return _find(conn, email)


def sign_in(
    store: Store,
    *,
    email: str,
    password: str,
    address: str,
    now: datetime,
    lifetime: timedelta,
) -> tuple[SignedIn, str] | None:
    """A new session and the cookie's value if the e-mail and password are right and the
    account is enabled; None otherwise. Both are written to the audit log."""
    attempt = Attempt(name=email.strip().lower()[:100], address=address)
    try:
        email = normal_email(email)
    except RefusedError:
        email = ""
    with reading(store) as conn:
        row = conn.execute(sa.select(accounts).where(accounts.c.email == email)).first()
    stored = _UNKNOWN if row is None else str(row.password_hash)
    try:
        right = _hasher.verify(stored, password[:MAX_PASSWORD]) and row is not None
    except (VerificationError, InvalidHashError):
        right = False
    if not right or row is None or row.disabled_at is not None:
        why = "disabled" if right and row is not None else "wrong e-mail or password"
        with unit_of_work(store) as conn:
            audit.record(conn, attempt, "signin.refused", attempt.name, now, reason=why)
        return None
    with unit_of_work(store) as conn:
        found = _account(row)
        if _hasher.check_needs_rehash(stored):
            conn.execute(
                accounts.update()
                .where(accounts.c.id == found.id)
                .values(password_hash=_hasher.hash(password))
            )
        return _open_session(conn, found, address, now, lifetime)


# The password hash of an account made by an identity provider: no password matches it.
NO_PASSWORD = "!external"


def sign_in_external(
    store: Store,
    *,
    provider: str,
    email: str,
    name: str,
    role: str,
    operator: str | None,
    address: str,
    now: datetime,
    lifetime: timedelta,
) -> tuple[SignedIn, str] | None:
    """A new session for a person an identity provider has signed in. Their account is
    made at the first sign-in (without a password) and takes the provider's name, role
    and operator at each; None, and the refusal in the audit log, if it is disabled."""
    email = normal_email(email)
    name = CONTROL_CHARACTERS.sub(" ", name).strip()[:100] or email[:100]
    with unit_of_work(store) as conn:
        row = conn.execute(sa.select(accounts).where(accounts.c.email == email)).first()
        if row is not None and row.disabled_at is not None:
            attempt = Attempt(name=email[:100], address=address)
            audit.record(
                conn, attempt, "signin.refused", email, now, reason="disabled", provider=provider
            )
            return None
        values = {"name": name, "role": role, "operator": operator}
        if row is None:
            conn.execute(
                accounts.insert().values(
                    email=email,
                    password_hash=NO_PASSWORD,
                    created_at=now,
                    password_set_at=now,
                    **values,
                )
            )
            audit.record(
                conn,
                Attempt(name=provider[:100], address=address),
                "account.add",
                email,
                now,
                name=name,
                role=role,
                operator=operator,
            )
        elif (row.name, row.role, row.operator) != (name, role, operator):
            conn.execute(accounts.update().where(accounts.c.id == row.id).values(**values))
        return _open_session(conn, _find(conn, email), address, now, lifetime, provider=provider)


def _open_session(
    conn: Connection,
    account: Account,
    address: str,
    now: datetime,
    lifetime: timedelta,
    *,
    provider: str | None = None,
) -> tuple[SignedIn, str]:
    value = secrets.token_urlsafe(32)
    expires_at = now + lifetime
    conn.execute(
        sessions.insert().values(
            account_id=account.id,
            token_sha256=session_digest(value),
            address=address[:64],
            created_at=now,
            expires_at=expires_at,
        )
    )
    conn.execute(accounts.update().where(accounts.c.id == account.id).values(last_sign_in_at=now))
    signed = Attempt(name=account.name, address=address, role=account.role)
    audit.record(conn, signed, "signin", account.email, now, provider=provider)
    return SignedIn(_find(conn, account.email), expires_at), value


def refused(store: Store, *, who: str, address: str, reason: str, now: datetime) -> None:
    """A sign-in refused before any account was looked at, for the audit log."""
    with unit_of_work(store) as conn:
        attempt = Attempt(name=who[:100], address=address)
        audit.record(conn, attempt, "signin.refused", who, now, reason=reason[:300])


def session(store: Store, value: str, now: datetime) -> SignedIn | None:
    """The account of a cookie's session if the session is open, not expired, and its
    account enabled."""
    c = sessions.c
    query = (
        sa.select(accounts, c.expires_at)
        .join(sessions, c.account_id == accounts.c.id)
        .where(
            c.token_sha256 == session_digest(value),
            c.ended_at.is_(None),
            c.expires_at > now,
            accounts.c.disabled_at.is_(None),
        )
    )
    with reading(store) as conn:
        row = conn.execute(query).first()
    return None if row is None else SignedIn(_account(row), row.expires_at)


def sign_out(store: Store, value: str, address: str, now: datetime) -> bool:
    """End the session of a cookie's value; False if it was not open."""
    c = sessions.c
    with unit_of_work(store) as conn:
        row = conn.execute(
            sa.select(accounts.c.name, accounts.c.email, accounts.c.role)
            .join(sessions, c.account_id == accounts.c.id)
            .where(c.token_sha256 == session_digest(value), c.ended_at.is_(None))
        ).first()
        if row is None:
            return False
        conn.execute(
            sessions.update().where(c.token_sha256 == session_digest(value)).values(ended_at=now)
        )
        who = Attempt(name=row.name, address=address, role=row.role)
        audit.record(conn, who, "signout", row.email, now)
    return True
