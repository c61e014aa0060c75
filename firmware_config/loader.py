"""Loads a settings class from a TOML file and ``MEDICOBUS_*`` environment variables.

Environment variables win over the file, so a deployment can override one value
without editing the file. Errors name the file and the field.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

S = TypeVar("S", bound="TomlSettings")


class ConfigError(ValueError):
    """A configuration file or value that cannot be used; the message says where and why."""


class TomlSettings(BaseSettings):
    """Base of every process's settings: init args > env vars > TOML file > defaults."""

    model_config = SettingsConfigDict(extra="forbid", env_nested_delimiter="__")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def _describe(error: ValidationError, origin: str) -> str:
    lines = [f"{origin}: {error.error_count()} invalid setting(s)"]
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"]) or "(file)"
        lines.append(f"  {where}: {item['msg']}")
    return "\n".join(lines)


def load_settings(cls: type[S], toml_file: Path | None = None, **overrides: Any) -> S:
    """Build ``cls`` from ``toml_file`` (optional), the environment and ``overrides``."""
    origin = str(toml_file) if toml_file is not None else "environment"
    target: type[S] = cls
    if toml_file is not None:
        if not toml_file.is_file():
            raise ConfigError(f"{toml_file}: no such configuration file")
        try:
            with toml_file.open("rb") as fh:
                tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{toml_file}: not valid TOML ({exc})") from None
        config = SettingsConfigDict(**{**cls.model_config, "toml_file": toml_file})
        target = type(cls.__name__, (cls,), {"model_config": config, "__module__": cls.__module__})
    try:
        return target(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin)) from None
