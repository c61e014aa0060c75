"""Signing in and out of the web app: an e-mail and a password, or the organisation's
identity provider (OpenID Connect), give an HttpOnly session cookie and the CSRF token the
app sends with every change; who is signed in; sign out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import RedirectResponse
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
from api.oidc import FLOW_COOKIE, FLOW_SECONDS, Flow, OidcProvider, OidcRefusedError
from ingest.services import accounts
from ingest.services.common import RefusedError
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


def _set_session(request: Request, response: Response, value: str) -> None:
    authenticator: Authenticator = request.app.state.authenticator
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=int(authenticator.session_lifetime.total_seconds()),
        path="/",
        secure=_cookie_is_secure(request),
        httponly=True,
        samesite="strict",
    )


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
    _set_session(request, response, value)
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
def who(request: Request, caller: Anyone) -> SessionOut:
    """Who is signed in, by session cookie or token; with a cookie, its CSRF token."""
    signed: accounts.SignedIn | None = getattr(request.state, "signed_in", None)
    value = request.cookies.get(SESSION_COOKIE)
    if signed is None or value is None:
        return SessionOut(name=caller.name, role=caller.role, operator=caller.operator)
    return SessionOut(
        name=caller.name,
        role=caller.role,
        operator=caller.operator,
        email=signed.account.email,
        expires_at=signed.expires_at,
        csrf_token=csrf_token(value),
    )


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


class ProviderOut(BaseModel):
    label: str = Field(description="« Se connecter avec … »")
    url: str = Field(description="where the sign-in button leads")


class ProvidersOut(BaseModel):
    oidc: ProviderOut | None = Field(description="the organisation's identity provider, if any")


def _provider(request: Request) -> OidcProvider:
    provider: OidcProvider | None = getattr(request.app.state, "oidc", None)
    if provider is None:
        raise HTTPException(status_code=404, detail="no identity provider is configured")
    return provider


@router.get("/session/providers")
def providers(request: Request) -> ProvidersOut:
    """How one may sign in besides a password (no sign-in needed to ask)."""
    provider: OidcProvider | None = getattr(request.app.state, "oidc", None)
    if provider is None:
        return ProvidersOut(oidc=None)
    return ProvidersOut(oidc=ProviderOut(label=provider.label, url="/api/v1/session/oidc"))


@router.get("/session/oidc", response_class=RedirectResponse, status_code=303)
def oidc_start(request: Request) -> RedirectResponse:
    """Sends the browser to the identity provider (authorisation code with PKCE)."""
    provider = _provider(request)
    try:
        url, flow = provider.start(str(request.url_for("oidc_callback")))
    except OidcRefusedError as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from None
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        FLOW_COOKIE,
        flow.cookie(),
        max_age=FLOW_SECONDS,
        path="/api/v1/session/oidc",
        secure=_cookie_is_secure(request),
        httponly=True,
        samesite="lax",
    )
    return response


# Where the browser goes after the provider: the app, or its sign-in page saying it failed.
SIGNED_IN_PAGE = "/#/carte"
REFUSED_PAGE = "/#/connexion-refusee"


@router.get(
    "/session/oidc/callback",
    name="oidc_callback",
    response_class=RedirectResponse,
    status_code=303,
)
def oidc_callback(request: Request, store: StoreDep, clock: ClockDep) -> RedirectResponse:
    """The provider sends the browser back here: the session cookie is set and the browser
    goes to the app, or to the sign-in page saying it failed (the reason is in the audit
    log)."""
    provider = _provider(request)
    authenticator: Authenticator = request.app.state.authenticator
    address = client_address(request)
    authenticator.check_address(address)
    params = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
    try:
        flow = Flow.of_cookie(request.cookies.get(FLOW_COOKIE))
        identity = provider.finish(str(request.url_for("oidc_callback")), flow, params)
        done = accounts.sign_in_external(
            store,
            provider=provider.label,
            email=identity.email,
            name=identity.name,
            role=identity.role.value,
            operator=identity.operator,
            address=address,
            now=clock.now(),
            lifetime=authenticator.session_lifetime,
        )
    except (OidcRefusedError, RefusedError) as exc:
        authenticator.failed(address)
        accounts.refused(
            store, who=provider.label, address=address, reason=str(exc), now=clock.now()
        )
        done = None
    response = RedirectResponse(SIGNED_IN_PAGE if done else REFUSED_PAGE, status_code=303)
    response.delete_cookie(FLOW_COOKIE, path="/api/v1/session/oidc")
    if done is not None:
        _set_session(request, response, done[1])
    return response
