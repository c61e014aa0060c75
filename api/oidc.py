"""Signing in through the organisation's identity provider (OpenID Connect, authorisation
code flow with PKCE; Pro Santé Connect is one): where to send the browser, and what the
provider's answer proves. authlib makes the authorisation address and exchanges the code;
joserfc (authlib's JOSE library) checks the ID token's signature against the provider's
keys and its issuer, audience, expiry and nonce. The provider's claims name the person's
role and operator (settings say which claims, and how their values map to roles)."""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import requests
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from api.auth import Role

# The flow's own cookie: its state, nonce and PKCE verifier, for ten minutes. SameSite=Lax,
# not Strict: the provider sends the browser back with a cross-site navigation.
FLOW_COOKIE = "medicobus_oidc"
FLOW_SECONDS = 600
TIMEOUT_S = 10


class OidcSettings(BaseModel):
    """``[oidc]`` in ``api.toml``."""

    model_config = ConfigDict(extra="forbid")

    issuer: HttpUrl = Field(description="the provider's issuer; its discovery document is read")
    client_id: str = Field(min_length=1, max_length=200)
    client_secret: str = Field(min_length=1, max_length=500)
    label: str = Field(
        default="l'annuaire de votre organisation",
        max_length=60,
        description="shown on the sign-in button: « Se connecter avec … »",
    )
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "profile"])
    role_claim: str = Field(default="medicobus_role", description="the claim naming the role")
    operator_claim: str = Field(
        default="medicobus_operator", description="the claim naming the operator"
    )
    roles: dict[str, Role] = Field(
        default_factory=dict,
        description="the role claim's values and the roles they give; a role's own name "
        "gives it too",
    )
    redirect_url: HttpUrl | None = Field(
        default=None,
        description="this API's callback as the provider knows it (behind a proxy); by "
        "default, the address the request came to",
    )


class OidcRefusedError(Exception):
    """The provider's answer does not sign anyone in: the reason, for the audit log."""


@dataclass(frozen=True)
class Identity:
    email: str
    name: str
    role: Role
    operator: str | None
    subject: str


@dataclass(frozen=True)
class Flow:
    state: str
    nonce: str
    verifier: str

    def cookie(self) -> str:
        raw = json.dumps({"s": self.state, "n": self.nonce, "v": self.verifier}).encode()
        return base64.urlsafe_b64encode(raw).decode()

    @staticmethod
    def of_cookie(value: str | None) -> Flow:
        if not value:
            raise OidcRefusedError("no sign-in under way in this browser (or it took too long)")
        try:
            found = json.loads(base64.urlsafe_b64decode(value.encode()))
            return Flow(str(found["s"]), str(found["n"]), str(found["v"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise OidcRefusedError("the sign-in cookie is damaged") from exc


class OidcProvider:
    def __init__(self, settings: OidcSettings) -> None:
        self.settings = settings
        self._metadata: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return self.settings.label

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document, read once."""
        if self._metadata is None:
            issuer = str(self.settings.issuer).rstrip("/")
            try:
                answer = requests.get(
                    f"{issuer}/.well-known/openid-configuration", timeout=TIMEOUT_S
                )
                answer.raise_for_status()
                found = answer.json()
            except (requests.RequestException, ValueError) as exc:
                raise OidcRefusedError(f"the identity provider does not answer: {exc}") from exc
            if str(found.get("issuer", "")).rstrip("/") != issuer:
                raise OidcRefusedError(f"the provider says its issuer is {found.get('issuer')!r}")
            self._metadata = found
        return self._metadata

    def _client(self, redirect_uri: str) -> OAuth2Session:
        return OAuth2Session(
            self.settings.client_id,
            self.settings.client_secret,
            scope=" ".join(self.settings.scopes),
            redirect_uri=str(self.settings.redirect_url or redirect_uri),
            code_challenge_method="S256",
            default_timeout=TIMEOUT_S,
        )

    def start(self, redirect_uri: str) -> tuple[str, Flow]:
        """The provider's address to send the browser to, and the flow to remember."""
        flow = Flow(secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48))
        url, _ = self._client(redirect_uri).create_authorization_url(
            self.metadata()["authorization_endpoint"],
            state=flow.state,
            code_verifier=flow.verifier,
            nonce=flow.nonce,
        )
        return str(url), flow

    def finish(self, redirect_uri: str, flow: Flow, params: dict[str, str]) -> Identity:
        """Who the provider signed in, from its answer to the browser's return."""
        if "error" in params:
            raise OidcRefusedError(f"the provider answered {params['error'][:100]!r}")
        if not secrets.compare_digest(params.get("state", ""), flow.state):
            raise OidcRefusedError("the answer's state is not this browser's sign-in")
        code = params.get("code", "")
        if not code:
            raise OidcRefusedError("the provider's answer has no code")
        metadata = self.metadata()
        try:
            token = self._client(redirect_uri).fetch_token(
                metadata["token_endpoint"], code=code, code_verifier=flow.verifier
            )
        except Exception as exc:  # authlib raises its own errors and requests'
            raise OidcRefusedError(f"the provider refused the code: {exc}") from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise OidcRefusedError("the provider's answer has no ID token")
        return self._identity(self._claims(id_token, flow.nonce, metadata))

    def _claims(self, id_token: str, nonce: str, metadata: dict[str, Any]) -> dict[str, Any]:
        try:
            keys = requests.get(metadata["jwks_uri"], timeout=TIMEOUT_S)
            keys.raise_for_status()
            key_set = KeySet.import_key_set(keys.json())
        except (requests.RequestException, ValueError, JoseError) as exc:
            raise OidcRefusedError(f"the provider's keys cannot be read: {exc}") from exc
        try:
            decoded = jwt.decode(id_token, key_set, algorithms=["RS256", "ES256", "PS256"])
            jwt.JWTClaimsRegistry(
                now=int(time.time()),
                leeway=60,
                iss={"essential": True, "value": str(self.settings.issuer).rstrip("/")},
                aud={"essential": True, "value": self.settings.client_id},
                exp={"essential": True},
                sub={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            raise OidcRefusedError(f"the ID token is refused: {exc}") from exc
        return dict(decoded.claims)

    def _identity(self, claims: dict[str, Any]) -> Identity:
        email = claims.get("email")
        if not isinstance(email, str) or not email:
            raise OidcRefusedError("the provider gave no e-mail (ask for the email scope)")
        # Accounts are found by e-mail: one the provider has not verified proves nothing.
        if claims.get("email_verified") is False:
            raise OidcRefusedError(f"the provider has not verified {email[:100]!r}")
        given = claims.get(self.settings.role_claim)
        if not isinstance(given, str):
            raise OidcRefusedError(f"the provider gave no {self.settings.role_claim!r}")
        role = self.settings.roles.get(given)
        if role is None and given in Role.__members__.values():
            role = Role(given)
        if role is None:
            raise OidcRefusedError(f"{given[:60]!r} is not a role of this product")
        operator = claims.get(self.settings.operator_claim)
        if operator is not None and not isinstance(operator, str):
            raise OidcRefusedError(f"{self.settings.operator_claim!r} is not a text")
        if role is not Role.ADMIN and not operator:
            raise OidcRefusedError(f"a {role.value} needs {self.settings.operator_claim!r}")
        name = claims.get("name")
        return Identity(
            email=email,
            name=name if isinstance(name, str) and name.strip() else email,
            role=role,
            operator=operator or None,
            subject=str(claims["sub"]),
        )
