"""One Settings object, read from ``SHIPYARD_*`` environment variables.

Everything Shipyard keeps on disk lives under the home folder (``~/.shipyard`` unless
``SHIPYARD_HOME`` or ``--home`` says otherwise); the database and artifact store default
to places inside it and switch to PostgreSQL or an object store by URL.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_HOME = Path("~/.shipyard")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHIPYARD_", extra="ignore")

    home: Path = Field(default=DEFAULT_HOME, description="Folder for the database, artifacts and tokens.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in the home.")
    artifacts_url: str | None = Field(default=None, description="fsspec URL; default <home>/artifacts.")
    host: str = Field(default="127.0.0.1", description="Address the API binds to.")
    port: int = Field(default=8420, ge=0, le=65535)
    url: str | None = Field(default=None, description="Where clients find the API.")
    token: str | None = Field(default=None, description="API token used by the SDK and CLI.")
    max_request_bytes: int = Field(default=16 * 1024 * 1024, gt=0, description="Limit for JSON bodies.")
    max_artifact_bytes: int = Field(default=5 * 1024**3, gt=0, description="Limit for one artifact upload.")
    default_token_days: int = Field(default=90, gt=0, description="Lifetime of new tokens unless given.")
    scheduler_interval_s: float = Field(default=5.0, gt=0, le=3600, description="How often the scheduler looks for due work.")

    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_home() / 'shipyard.db'}"

    def resolved_artifacts_url(self) -> str:
        if self.artifacts_url:
            return self.artifacts_url
        return str(self.resolved_home() / "artifacts")

    def resolved_url(self) -> str:
        if self.url:
            return self.url.rstrip("/")
        return f"http://{self.host}:{self.port}"

    @property
    def admin_token_path(self) -> Path:
        return self.resolved_home() / "admin.token"
