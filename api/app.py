"""The FastAPI application: routers per audience, health, and the dashboard's page."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import timedelta
from importlib import resources
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from api.auth import ApiUser, Authenticator
from api.live import LiveBroadcaster, WakeOnChange
from api.oidc import OidcProvider
from api.routes import (
    alerts,
    audit,
    coldchain,
    engineering,
    fleet,
    live,
    public,
    reports,
    session,
    track,
    visits,
)
from api.routes.public import PublicLimits
from api.scope import itinerary_zone
from api.security import (
    DEFAULT_MAX_BODY_BYTES,
    BodyLimit,
    SecurityHeaders,
    inline_script_policy,
)
from ingest.services.common import ConflictError, NotFoundError, NotReadyError, RefusedError
from ingest.store import Store
from ingest.visit_figures import NoVisitFigures, VisitFigures
from protocol.clock import Clock

# How the service layer's refusals are answered, in one place for every route.
_STATUS_OF_REFUSAL: dict[type[Exception], int] = {
    NotFoundError: 404,
    ConflictError: 409,
    RefusedError: 422,
    NotReadyError: 503,
}


def _answer_refusals(app: FastAPI) -> None:
    async def answer(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=_STATUS_OF_REFUSAL[type(exc)])

    for kind in _STATUS_OF_REFUSAL:
        app.add_exception_handler(kind, answer)


def _declare_refusals(app: FastAPI) -> None:
    """A 422 is either FastAPI's list of validation errors or a refusal of well-formed
    data with its reason as text (a period too long, profiles that do not add up): the
    schema says both, so that what is declared is what is answered."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            found = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            error = found.get("components", {}).get("schemas", {}).get("HTTPValidationError")
            if error is not None:
                listed = error["properties"]["detail"]
                error["properties"]["detail"] = {
                    "anyOf": [listed, {"type": "string"}],
                    "title": "Detail",
                    "description": "the fields refused, or the reason the request is",
                }
            app.openapi_schema = found
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


# Swagger UI, vendored from npm (swagger-ui-dist, version in its package.json).
SWAGGER_UI = "/static/vendor/swagger-ui"


def create_app(
    store: Store,
    users: Sequence[ApiUser],
    metrics: CollectorRegistry | None = None,
    visit_figures: VisitFigures | None = None,
    *,
    live_interval_s: float = 1.0,
    live_ping_s: float = 15.0,
    clock: Clock | None = None,
    public_limits: PublicLimits | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    session_lifetime: timedelta = timedelta(hours=12),
    secure_cookies: bool = True,
    oidc: OidcProvider | None = None,
) -> FastAPI:
    """``metrics``: a Prometheus registry to serve at ``/metrics`` (the ingest's, when
    ingest and API share a process). ``visit_figures`` answers the reports' questions
    about visits (held, patients seen, punctuality); without it those figures are
    reported as not recorded. ``live_interval_s``: how often the live push reads the
    database (once for all its clients); ``live_ping_s``: how often an idle stream gets a
    comment line. ``clock``: the time the API works with (the system's by default).
    ``public_limits``: the public pages' rate limit and the sites that may frame their
    embedded view. ``max_body_bytes``: larger request bodies are refused (413).
    ``session_lifetime``: how long a browser session lasts; ``secure_cookies``: whether
    its cookie is sent over HTTPS only. ``oidc``: the organisation's identity provider,
    offered on the sign-in page beside passwords."""
    app = FastAPI(
        # /docs is served below from the vendored Swagger UI: it works offline.
        docs_url=None,
        redoc_url=None,
        title="Médicobus telemetry",
        version="0.1.0",
        description="Live positions and health of mobile GP surgeries. "
        "Send a personal token as `Authorization: Bearer <token>`, or sign in with "
        "`POST /api/v1/session` (a session cookie, and a CSRF token for changes).",
    )
    app.state.store = store
    app.state.authenticator = Authenticator(
        users, store=store, clock=clock, session_lifetime=session_lifetime
    )
    app.state.secure_cookies = secure_cookies
    app.state.oidc = oidc
    app.state.visit_figures = visit_figures or NoVisitFigures()
    if clock is not None:
        app.state.clock = clock
    app.state.public_limits = public_limits or PublicLimits()
    app.state.live = LiveBroadcaster(
        store,
        clock=clock,
        interval_s=live_interval_s,
        ping_s=live_ping_s,
        zone=functools.partial(itinerary_zone, store),
    )
    app.add_middleware(WakeOnChange, broadcaster=app.state.live)
    app.add_middleware(SecurityHeaders)
    # Outermost: a body too large is refused before anything reads it.
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    _answer_refusals(app)
    _declare_refusals(app)
    app.include_router(session.router)
    app.include_router(fleet.router)
    app.include_router(live.router)
    app.include_router(track.router)
    app.include_router(engineering.router)
    app.include_router(visits.router)
    app.include_router(alerts.router)
    app.include_router(coldchain.router)
    app.include_router(reports.router)
    app.include_router(audit.router)
    app.include_router(public.router)
    # The web app's files (scripts, styles, vendored libraries) under /static/.
    app.mount(
        "/static",
        StaticFiles(directory=str(resources.files("api").joinpath("static"))),
        name="static",
    )
    if metrics is not None:
        registry = metrics

        @app.get("/metrics", include_in_schema=False)
        def prometheus() -> Response:
            return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API",
            swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_UI}/favicon-32x32.png",
            # No badge from the online validator: nothing leaves the page.
            swagger_ui_parameters={"validatorUrl": None},
        )
        html = bytes(page.body).decode()
        return HTMLResponse(html, headers={"Content-Security-Policy": inline_script_policy(html)})

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        try:
            store.ping()
        except SQLAlchemyError as exc:
            raise HTTPException(status_code=503, detail=f"database unavailable: {exc}") from None
        return {"status": "ok", "database": "ok"}

    @app.get("/", include_in_schema=False)
    def dashboard() -> HTMLResponse:
        page = resources.files("api").joinpath("static/index.html").read_text(encoding="utf-8")
        return HTMLResponse(page)

    return app
