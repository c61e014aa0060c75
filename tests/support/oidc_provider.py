"""An OpenID Connect provider for tests, served on loopback: discovery, an authorisation
endpoint that signs in whoever the test says (no outside network, no form), a token
endpoint that checks the client's secret, the redirect address and the PKCE verifier, and
its keys. ID tokens are signed with joserfc; a test can make it answer wrongly."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse
from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID = "medicobus"
CLIENT_SECRET = "secret-of-the-medicobus-client"


def oauth_error(status: int, error: str, description: str = "") -> JSONResponse:
    """An error of the token endpoint as RFC 6749 (5.2) writes it."""
    return JSONResponse({"error": error, "error_description": description}, status)


@dataclass
class Grant:
    redirect_uri: str
    nonce: str
    challenge: str


@dataclass
class Provider:
    """``claims``: who the next sign-in is (beside iss, aud, sub, exp, iat, nonce);
    ``forge``: claims to put over the ones the provider would write (a wrong audience,
    nonce, issuer, an expired token); ``signing_key``: another key than the published
    one; ``deny``: answer the browser with an error."""

    issuer: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": "k1"}))
    claims: dict[str, Any] = field(default_factory=dict)
    forge: dict[str, Any] = field(default_factory=dict)
    signing_key: RSAKey | None = None
    deny: bool = False
    grants: dict[str, Grant] = field(default_factory=dict)
    token_requests: int = 0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        def discovery() -> dict[str, Any]:
            return {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }

        @app.get("/jwks")
        def jwks() -> dict[str, Any]:
            return {"keys": [self.key.as_dict(private=False)]}

        @app.get("/authorize")
        def authorize(request: Request) -> RedirectResponse:
            q = request.query_params
            if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code":
                raise HTTPException(400, "unknown client or response type")
            if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
                raise HTTPException(400, "PKCE with S256 is required")
            if "openid" not in q.get("scope", "").split():
                raise HTTPException(400, "not an OpenID Connect request")
            back = q["redirect_uri"]
            if self.deny:
                return RedirectResponse(f"{back}?error=access_denied&state={q['state']}", 302)
            code = secrets.token_urlsafe(16)
            self.grants[code] = Grant(back, q.get("nonce", ""), q["code_challenge"])
            return RedirectResponse(f"{back}?code={code}&state={q['state']}", 302)

        @app.post("/token")
        async def token(request: Request) -> Any:
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            grant_type, code = form.get("grant_type", ""), form.get("code", "")
            redirect_uri, code_verifier = form.get("redirect_uri"), form.get("code_verifier", "")
            self.token_requests += 1
            expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if request.headers.get("authorization") != f"Basic {expected}":
                return oauth_error(401, "invalid_client")
            grant = self.grants.pop(code, None)
            if grant_type != "authorization_code" or grant is None:
                return oauth_error(400, "invalid_grant")
            if redirect_uri != grant.redirect_uri:
                return oauth_error(400, "invalid_grant", "redirect_uri differs")
            digest = hashlib.sha256(code_verifier.encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.challenge:
                return oauth_error(400, "invalid_grant", "PKCE verifier does not match")
            now = int(time.time())
            claims = {
                "iss": self.issuer,
                "aud": CLIENT_ID,
                "sub": f"sub-{self.claims.get('email', 'x')}",
                "iat": now,
                "exp": now + 300,
                "nonce": grant.nonce,
                **self.claims,
                **self.forge,
            }
            key = self.signing_key or self.key
            id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)
            return {"access_token": "at", "token_type": "Bearer", "id_token": id_token}

        return app
