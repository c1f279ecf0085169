"""Gateway settings, read from ``SHIPYARD_GATEWAY_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shipyard.settings import Settings


class GatewayConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHIPYARD_GATEWAY_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Address the gateway binds to.")
    port: int = Field(default=8421, ge=0, le=65535)
    workers: int = Field(default=2, ge=1, le=64, description="uvicorn worker processes at start, and the fewest kept.")
    max_workers: int = Field(
        default=8, ge=1, le=64, description="Most worker processes the gateway grows to when endpoints ask for replicas."
    )
    poll_seconds: float = Field(default=1.0, gt=0, description="How often each worker asks for the desired state.")
    token_ttl_seconds: float = Field(default=5.0, ge=0, description="How long a token check is reused.")
    max_body_bytes: int = Field(default=1024 * 1024, gt=0, description="Largest request body; bigger ones get 413.")
    batch_max_size: int = Field(default=32, ge=1, le=4096, description="Most requests one model call answers together.")
    batch_max_wait_ms: float = Field(
        default=0.0, ge=0, le=1000, description="How long a batch waits to fill; 0 batches only requests already read."
    )
    prediction_log_rate: float = Field(default=0.1, ge=0, le=1, description="Share of requests written to the prediction log.")
    prediction_log_url: str | None = Field(
        default=None, description="Folder or fsspec URL for the prediction log; default <home>/predictions."
    )
    prediction_log_flush_seconds: float = Field(default=2.0, gt=0, description="How often sampled predictions are written out.")
    metrics_public: bool = Field(
        default=False, description="Serve /metrics without a token (for a Prometheus on a trusted network)."
    )
    token_file: Path | None = Field(default=None, description="File holding the token used to reach the control plane.")

    def resolved_prediction_log_url(self, settings: Settings) -> str:
        """Where the log is written and read: the configured URL, or ``predictions`` in the home folder."""
        return self.prediction_log_url or str(settings.resolved_home() / "predictions")
