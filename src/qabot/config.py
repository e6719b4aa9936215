"""One Settings object: QABOT_* environment variables and an optional .env file."""

from __future__ import annotations

import hmac
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _id_list(value: object) -> object:
    if isinstance(value, str):
        return [int(v) for v in value.replace(";", ",").split(",") if v.strip()]
    if isinstance(value, int):
        return [value]
    return value


def _str_list(value: object) -> object:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="QABOT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    docs_dir: Path = Path("data/reports")
    index_dir: Path = Path("embeddings")
    embedder: str = "bundled"
    embedding_model: str | None = None  # for the sentence-transformers embedder
    # How a sentence-transformers model is computed (qabot.embedding.ENGINES).
    embedding_engine: Literal["auto", "numpy", "sentence-transformers"] = "auto"
    top_k: int = Field(5, ge=1, le=20)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    cors_origins: Annotated[list[str], NoDecode] = []
    admin_token: SecretStr | None = None
    max_upload_bytes: int = 10 * 1024 * 1024
    # Requests per minute each client (address) may make to the public API, and how many it
    # may make at once before that rate applies; 0: no limit. See qabot.http.ratelimit.
    rate_limit: int = Field(300, ge=0)
    rate_limit_burst: int = Field(100, ge=1)
    reload_seconds: float = 2.0  # how often a running service looks for a new index
    log_level: str = "INFO"
    # The question log: a SQLite file path; unset: beside the index folder
    # (embeddings -> embeddings-questions.sqlite); "off": no log.
    log_db: str | None = None
    log_days: int = Field(180, ge=1)  # questions older than this are deleted

    telegram_token: SecretStr | None = None
    telegram_base_url: str = "https://api.telegram.org/bot"
    telegram_allowed_chats: Annotated[list[int], NoDecode] = []
    telegram_admins: Annotated[list[int], NoDecode] = []
    telegram_rate_limit: int = 20  # questions per user per minute
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None

    _split_ids = field_validator("telegram_allowed_chats", "telegram_admins", mode="before")(
        staticmethod(_id_list)
    )
    _split_origins = field_validator("cors_origins", mode="before")(staticmethod(_str_list))


def admin_token_matches(settings: Settings, given: str) -> bool:
    """True when ``given`` is the configured admin token (never when none is configured).
    Constant-time; bytes, since compare_digest refuses non-ASCII str and a client may send
    anything."""
    secret = settings.admin_token.get_secret_value() if settings.admin_token else ""
    if not secret:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), secret.encode("utf-8"))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
