"""Gateway settings, read from ``SHIPYARD_GATEWAY_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewayConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHIPYARD_GATEWAY_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Address the gateway binds to.")
    port: int = Field(default=8421, ge=0, le=65535)
    workers: int = Field(default=2, ge=1, le=64, description="uvicorn worker processes.")
    poll_seconds: float = Field(default=1.0, gt=0, description="How often each worker asks for the desired state.")
    token_ttl_seconds: float = Field(default=5.0, ge=0, description="How long a token check is reused.")
    max_body_bytes: int = Field(default=1024 * 1024, gt=0, description="Largest request body; bigger ones get 413.")
    token_file: Path | None = Field(default=None, description="File holding the token used to reach the control plane.")
