"""Settings read from the environment (prefix ``SMARTSTUDY_``) with pydantic-settings."""

from __future__ import annotations

import os
import secrets
import stat
import tempfile
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/smartstudy``, or ``~/.local/share/smartstudy``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "smartstudy"


def tighten(path: Path) -> None:
    """Take group and other permissions off ``path`` if this process owns it.

    The data folder, the database and the key files hold password hashes and every
    student's data: nobody but their owner has any business reading them.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    if info.st_mode & 0o077 and info.st_uid == os.geteuid():
        path.chmod(stat.S_IMODE(info.st_mode) & 0o700)


def private_dir(path: Path) -> Path:
    """``path`` as a folder only its owner can enter (created 0700, or tightened)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    tighten(path)
    return path


def write_private_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by the owner only from the start.

    The text goes to a temporary file created 0600 in the same folder, which then replaces
    ``path``: no moment exists where the content is readable by others or half written.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    training_pause: float = Field(
        default=10.0,
        ge=0,
        le=3600,
        description="Least seconds from the end of a training that succeeded to the start of "
        "the next one. Under load a training is due again as soon as one ends; models learn "
        "every completion online meanwhile, and the pause keeps trainings from taking a "
        "whole core. 0: start at once.",
    )
    sync_interval: float = Field(
        default=0.25,
        ge=0,
        le=60,
        description="Seconds a serving process may answer from what it last read of the "
        "database (other processes' completions, active model versions, the serving policy) "
        "before reading it again; 0 reads before every prediction. A process learns its own "
        "completions at once.",
    )
    practice_concurrency: int = Field(
        default=6,
        ge=0,
        le=1000,
        description="Practice requests (create or complete a task through the API) a "
        "server process works on at once; the others wait their turn in arrival order. "
        "A few at a time keeps slow requests rare under load: each runs nearly alone "
        "instead of sharing the interpreter with all the others. 0: no limit.",
    )
    open_signup: bool = Field(
        default=True,
        description="Anyone may create a student account (the sign-up page, POST "
        "/v1/auth/register). false: only admins create accounts (the admin Users page, "
        "POST /v1/users), for an installation open to the internet.",
    )
    auto_migrate: bool = Field(
        default=True, description="Run database migrations when the service starts."
    )
    min_free_disk_mb: int = Field(
        default=16,
        ge=0,
        description="Free disk space (MiB) the data folder and a SQLite database's folder "
        "need: below it /readyz answers 503 and commands refuse to start.",
    )

    jobs: Literal["inprocess", "celery"] = Field(
        default="inprocess",
        description="Where background jobs (training, BKT fits) run: inprocess (a thread of "
        "the serving process) or celery (`smartstudy worker` processes, via Redis).",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis URL of the Celery broker, e.g. redis://127.0.0.1:6379/0 "
        "(needed with SMARTSTUDY_JOBS=celery).",
    )
    job_queue: str = Field(
        default="smartstudy",
        min_length=1,
        description="Celery queue name (several installations can share one Redis).",
    )
    job_heartbeat_timeout: float = Field(
        default=120.0,
        gt=0,
        description="Seconds without a heartbeat after which a running job counts as dead: "
        "it is marked failed and its work queued again.",
    )
    job_max_attempts: int = Field(
        default=3,
        ge=1,
        description="Attempts a job gets; a job whose process died this often is not retried.",
    )

    log_format: Literal["text", "json"] = Field(
        default="text",
        description="Log lines of `smartstudy serve`: text, or json (one JSON object per "
        "line: time, level, logger, message, request_id, and the access log's fields).",
    )
    log_level: str = Field(
        default="INFO",
        pattern=r"(?i)^(debug|info|warning|error|critical)$",
        description="Lowest level logged by `smartstudy serve` (debug, info, warning, error).",
    )
    metrics_token: str | None = Field(
        default=None,
        min_length=16,
        description="Bearer token /metrics asks for; without it /metrics answers loopback "
        "clients only.",
    )

    @property
    def default_database_url(self) -> str:
        """The SQLite database in the data folder (nothing is created)."""
        return f"sqlite:///{self.data_dir / 'smartstudy.db'}"

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        # The default database lives in the data folder: make sure it exists, private.
        private_dir(self.data_dir)
        return self.default_database_url

    @property
    def database_setting(self) -> str:
        """The environment variable that chose the database (for error messages)."""
        return "SMARTSTUDY_DATABASE_URL" if self.database_url else "SMARTSTUDY_DATA_DIR"

    @cached_property
    def resolved_secret_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.is_file():
            tighten(self.data_dir)
            tighten(path)  # whoever reads it can forge tokens
            key = path.read_text().strip()
            if key:
                return key
        private_dir(self.data_dir)
        key = secrets.token_urlsafe(48)
        write_private_file(path, key)
        return key
