"""Settings of the API process. Env vars: ``MEDICOBUS_API_*``."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_settings import SettingsConfigDict

from api.auth import ApiUser
from api.oidc import OidcSettings
from firmware_config.loader import TomlSettings
from ingest.sql_dialects import check_database_url


class ApiSettings(TomlSettings):
    model_config = SettingsConfigDict(env_prefix="MEDICOBUS_API_")

    database_url: Annotated[str, AfterValidator(check_database_url)] = Field(
        default="sqlite:///medicobus.sqlite"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    users: list[ApiUser] = Field(
        default_factory=list,
        description="who may call the API with a token: name, role, operator, token hash "
        "(people with a password are accounts in the database: medicobus users)",
    )
    live_interval_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="how often the live push reads the database, once for all its clients",
    )
    public_requests_per_minute: int = Field(
        default=120, ge=1, le=100_000, description="public pages: requests per client address"
    )
    public_frame_ancestors: list[str] = Field(
        default_factory=list,
        description="sites that may frame /public/<operator>/embed, e.g. https://www.mairie.fr",
    )
    max_body_bytes: int = Field(
        default=1 << 20,
        ge=1024,
        le=64 << 20,
        description="request bodies larger than this are refused (413) before being read",
    )
    session_hours: float = Field(
        default=12,
        gt=0,
        le=24 * 30,
        description="how long a browser session lasts after signing in",
    )
    secure_cookies: bool = Field(
        default=True,
        description="send the session cookie over HTTPS only (browsers also accept it "
        "from http://localhost and 127.0.0.1); turn off only behind a trusted proxy",
    )
    oidc: OidcSettings | None = Field(
        default=None,
        description="[oidc]: sign in through the organisation's identity provider too",
    )
    timeseries: bool = Field(
        default=False,
        description="queue coordinators' visit changes as time-series points, which the "
        "ingest sends: set it when the ingest has [influx]",
    )
