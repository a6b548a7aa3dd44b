"""The core settings, read once from the environment and `.env` (pydantic-settings).

Each feature reads its own settings class, a subclass of `Settings` with the feature's fields
and checks (e.g. `ai/settings.py`); `load_settings` builds any of them the same way.
Settings are immutable, so the same class read from the same sources is built once per process.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal, TypeVar, cast

from flask import Flask, current_app
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

APP_VERSION = "{{ cookiecutter.version }}"
INSTANCE_DIR = Path.cwd() / "instance"
DEFAULT_SECRET = "change-me"  # noqa: S105 - the placeholder that production refuses
MIN_SECRET_LENGTH = 32


def normalize_database_url(url: str) -> str:
    """`postgres://` and `postgresql://` URLs use psycopg 3, the driver the project installs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def check_secret(name: str, value: str) -> None:
    """Production refuses a missing, placeholder or short secret."""
    if not value or value == DEFAULT_SECRET or len(value) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"{name} must be set to a random value of at least {MIN_SECRET_LENGTH} "
            "characters in production"
        )


ENV_FILE = ".env"
_parsed_env_files: dict[tuple[object, ...], Mapping[str, str | None]] = {}


class ParsedOnceDotEnvSource(DotEnvSettingsSource):
    """pydantic-settings' `.env` source, parsing each state of a file once per process.

    Every settings class (one per feature) and every set of overrides reads the same `.env`;
    parsing it took longer than the rest of building a settings object. A file that changes
    (its modification time, size or inode) is parsed again.
    """

    def _read_env_file(self, file_path: Path) -> Mapping[str, str | None]:
        stat = file_path.stat()
        key = (
            str(file_path.resolve()),
            stat.st_mtime_ns,
            stat.st_size,
            stat.st_ino,
            self.env_file_encoding,
            self.case_sensitive,
            self.env_ignore_empty,
            self.env_parse_none_str,
        )
        parsed = _parsed_env_files.get(key)
        if parsed is None:
            parsed = MappingProxyType(dict(super()._read_env_file(file_path)))
            _parsed_env_files[key] = parsed
        return parsed


class Settings(BaseSettings):
    # `.env` holds every feature's variables; each class takes its own fields from it. (Without
    # "only_existing", pydantic-settings matches every other line of the file against every
    # field, only to drop it: most of the time it takes to build a settings object.)
    # `env_file` names no file here: pydantic-settings would parse it in its own source on every
    # instantiation, before `settings_customise_sources` replaces that source with one that
    # reads ENV_FILE parsed once.
    model_config = SettingsConfigDict(
        env_file=(),
        env_file_encoding="utf-8",
        dotenv_filtering="only_existing",
        extra="ignore",
        frozen=True,
    )

    app_env: Literal["development", "testing", "production"] = "development"
    secret_key: str = DEFAULT_SECRET

    database_url: str = f"sqlite:///{INSTANCE_DIR / 'app.db'}"
    # Apply migrations when the app starts; unset = only in development on SQLite.
    auto_migrate: bool | None = None
    redis_url: str | None = None

    rate_limit_default: str = "200 per minute"
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_content_length: int = Field(default=1024 * 1024, gt=0)
    # Reverse proxies in front of the app whose X-Forwarded-For/-Proto/-Host are trusted.
    trusted_proxy_hops: int = Field(default={{ 1 if cookiecutter.use_nginx else 0 }}, ge=0, le=5)
    log_level: str = "INFO"
    # Unset: readable lines in development, JSON everywhere else.
    log_format: Literal["json", "console"] | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The usual sources in the usual order, ENV_FILE parsed once (`ParsedOnceDotEnvSource`);
        `_env_file=` still names another file, or none."""
        env_file = cast(DotEnvSettingsSource, dotenv_settings).env_file
        if env_file == ():  # not named by `_env_file=`
            env_file = ENV_FILE
        dotenv = ParsedOnceDotEnvSource(settings_cls, env_file=env_file)
        return init_settings, env_settings, dotenv, file_secret_settings

    @field_validator("database_url")
    @classmethod
    def _psycopg_driver(cls, value: str) -> str:
        return normalize_database_url(value)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        # CORS_ORIGINS=https://a.example,https://b.example
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def migrate_on_start(self) -> bool:
        if self.auto_migrate is not None:
            return self.auto_migrate
        return self.app_env == "development" and self.is_sqlite

    @property
    def log_style(self) -> Literal["json", "console"]:
        if self.log_format is not None:
            return self.log_format
        return "console" if self.app_env == "development" else "json"

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.is_production:
            check_secret("SECRET_KEY", self.secret_key)
        return self


S = TypeVar("S", bound=Settings)


_loaded: dict[tuple[object, ...], Settings] = {}


def load_settings(cls: type[S], config: Mapping[str, Any] | None = None) -> S:
    """`cls` from the environment, `.env` and `config`; refuse to start when invalid."""
    overrides = dict(config or {})
    key = (cls, json.dumps(overrides, sort_keys=True, default=repr), *_sources(cls))
    cached = _loaded.get(key)
    if isinstance(cached, cls):
        return cached
    try:
        settings = cls(**overrides)
    except ValidationError as exc:
        problems = "; ".join(_describe(error) for error in exc.errors())
        raise SystemExit(f"Invalid settings: {problems}") from None
    _loaded[key] = settings
    return settings


def _sources(cls: type[Settings]) -> tuple[object, ...]:
    """What `cls` is read from besides its arguments: its variables in the environment (names
    are case-insensitive, no prefix) and its `.env` file."""
    try:
        stat = os.stat(ENV_FILE)
    except OSError:
        stat = None
    file_state = (stat.st_mtime_ns, stat.st_size, stat.st_ino) if stat else None
    fields = {name.lower() for name in cls.model_fields}
    environment = frozenset(
        (name, value) for name, value in os.environ.items() if name.lower() in fields
    )
    return (environment, file_state)


def _describe(error: ErrorDetails) -> str:
    setting = "_".join(str(part) for part in error["loc"]).upper()
    message = error["msg"].removeprefix("Value error, ")
    return f"{setting}: {message}" if setting else message


def init_feature_settings(app: Flask, cls: type[S]) -> S:
    """A feature's settings for `app`, from the same sources as the app's own."""
    settings = load_settings(cls, app.extensions["settings_overrides"])
    app.extensions.setdefault("feature_settings", {})[cls] = settings
    return settings


def feature_settings(cls: type[S]) -> S:
    """The current app's settings of the feature that declared `cls`."""
    settings: S = current_app.extensions["feature_settings"][cls]
    return settings
