"""Settings read from the environment (prefix ``SMARTSTUDY_``) with pydantic-settings."""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/smartstudy``, or ``~/.local/share/smartstudy``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "smartstudy"


class Settings(BaseSettings):
    """Everything configurable. Each field is read from ``SMARTSTUDY_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="SMARTSTUDY_", extra="ignore")

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Folder for the SQLite database, the secret key file and model files.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default sqlite:///<data_dir>/smartstudy.db. "
        "PostgreSQL: postgresql+psycopg://user@host:5432/dbname",
    )
    secret_key: str | None = Field(
        default=None,
        description="Key that signs access tokens; default: generated once and kept in "
        "<data_dir>/secret_key",
    )
    access_token_minutes: int = Field(default=60 * 24, gt=0, description="Token lifetime.")
    retrain_every: int = Field(
        default=5, gt=0, description="Completed tasks between two trainings of a model."
    )
    auto_migrate: bool = Field(
        default=True, description="Run database migrations when the service starts."
    )

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'smartstudy.db'}"

    @cached_property
    def resolved_secret_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.is_file():
            key = path.read_text().strip()
            if key:
                return key
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        # Created readable by the owner only: whoever reads it can forge tokens.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key


def get_settings() -> Settings:
    return Settings()
