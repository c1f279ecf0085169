"""Monitor loop settings, read from ``SHIPYARD_MONITOR_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shipyard.settings import Settings


class MonitorConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHIPYARD_MONITOR_", extra="ignore")

    interval_s: float = Field(
        default=30.0, gt=0, le=86_400, description="How often each monitor is checked, unless its spec says otherwise."
    )
    gateway_url: str | None = Field(
        default=None, description="The serving gateway whose /metrics give resource use (resource.* measures)."
    )
    gateway_token_file: Path | None = Field(
        default=None, description="Token for the gateway's /metrics; default SHIPYARD_TOKEN, else <home>/admin.token."
    )
    webhook_timeout_s: float = Field(default=2.0, gt=0, le=60, description="How long one webhook attempt may take.")
    webhook_attempts: int = Field(default=3, ge=1, le=10, description="Attempts per webhook notification.")

    def gateway_token(self, settings: Settings) -> str | None:
        """The token sent with a scrape of the gateway's /metrics, if there is one to read."""
        try:
            if self.gateway_token_file is not None:
                return self.gateway_token_file.read_text().strip() or None
            if settings.token:
                return settings.token
            return settings.admin_token_path.read_text().strip() or None
        except OSError:
            return None
