"""Signing in and out of the web app: an e-mail and a password give an HttpOnly session
cookie and the CSRF token the app sends with every change; who is signed in; sign out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import (
    SESSION_COOKIE,
    Authenticator,
    Principal,
    Role,
    client_address,
    csrf_token,
    require,
)
from api.deps import ClockDep, get_store
from ingest.services import accounts
from ingest.store import Store

router = APIRouter(prefix="/api/v1", tags=["session"])
StoreDep = Annotated[Store, Depends(get_store)]
Anyone = Annotated[Principal, Depends(require(*Role))]


class SignInIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=accounts.MAX_PASSWORD)


class SessionOut(BaseModel):
    name: str
    role: Role
    operator: str | None
    email: str | None = Field(default=None, description="for a signed-in account")
    expires_at: datetime | None = Field(default=None, description="when the session ends")
    csrf_token: str | None = Field(
        default=None,
        description="to send as X-CSRF-Token with every change made with the session cookie",
    )


def _cookie_is_secure(request: Request) -> bool:
    return bool(getattr(request.app.state, "secure_cookies", True))


@router.post(
    "/session",
    responses={401: {"description": "wrong e-mail or password"}, 429: {"description": "throttled"}},
)
def sign_in(
    body: SignInIn, request: Request, response: Response, store: StoreDep, clock: ClockDep
) -> SessionOut:
    """Sign in with an e-mail and a password: sets the session cookie (HttpOnly,
    SameSite=Strict) and answers the CSRF token. Wrong passwords are throttled per account
    and per address (429 with Retry-After)."""
    authenticator: Authenticator = request.app.state.authenticator
    address = client_address(request)
    authenticator.check_address(address)
    authenticator.check_account(body.email)
    lifetime = authenticator.session_lifetime
    done = accounts.sign_in(
        store,
        email=body.email,
        password=body.password,
        address=address,
        now=clock.now(),
        lifetime=lifetime,
    )
    if done is None:
        authenticator.failed(address)
        authenticator.failed_account(body.email)
        raise HTTPException(
            status_code=401, detail="wrong e-mail or password, or the account is disabled"
        )
    signed, value = done
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=int(lifetime.total_seconds()),
        path="/",
        secure=_cookie_is_secure(request),
        httponly=True,
        samesite="strict",
    )
    account = signed.account
    return SessionOut(
        name=account.name,
        role=Role(account.role),
        operator=account.operator,
        email=account.email,
        expires_at=signed.expires_at,
        csrf_token=csrf_token(value),
    )


@router.get("/session")
def who(request: Request, caller: Anyone, store: StoreDep, clock: ClockDep) -> SessionOut:
    """Who is signed in, by session cookie or token; with a cookie, its CSRF token."""
    value = request.cookies.get(SESSION_COOKIE)
    if value and "authorization" not in request.headers:
        signed = accounts.session(store, value, clock.now())
        if signed is not None:
            return SessionOut(
                name=caller.name,
                role=caller.role,
                operator=caller.operator,
                email=signed.account.email,
                expires_at=signed.expires_at,
                csrf_token=csrf_token(value),
            )
    return SessionOut(name=caller.name, role=caller.role, operator=caller.operator)


@router.delete("/session", status_code=204)
def sign_out(request: Request, caller: Anyone, store: StoreDep, clock: ClockDep) -> Response:
    """End the session of the cookie (with its CSRF token) and forget the cookie."""
    value = request.cookies.get(SESSION_COOKIE)
    if value:
        accounts.sign_out(store, value, caller.address, clock.now())
    response = Response(status_code=204)
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        secure=_cookie_is_secure(request),
        httponly=True,
        samesite="strict",
    )
    return response
