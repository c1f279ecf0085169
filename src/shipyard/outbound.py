"""Outbound HTTP for the monitor loop: webhook deliveries and scrapes of the gateway's /metrics.

The domain packages know nothing of HTTP (an import-linter contract keeps httpx out of
``shipyard.monitoring``), so they take these as plain callables: ``MonitorLoop(...,
send_webhook=..., gateway_metrics=...)`` and ``checks.read_resources(source)``. The CLI
and the API build them here from ``MonitorConfig``.

A webhook gets a short timeout and a few attempts with a growing pause; 2xx is delivered,
429 and 5xx and transport errors are retried, any other status is a refusal and is not.
The outcome is returned as one line of text and nothing raises, so a dead webhook costs a
few seconds at most and never loses the transition it was about.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import orjson

from shipyard._version import __version__
from shipyard.monitoring.config import MonitorConfig
from shipyard.settings import Settings

BACKOFF_S = 0.25
USER_AGENT = f"shipyard-monitor/{__version__}"


def post_json(
    url: str,
    document: Mapping[str, Any],
    *,
    timeout: float = 2.0,
    attempts: int = 3,
    backoff: float = BACKOFF_S,
    transport: httpx.BaseTransport | None = None,
) -> str:
    """POST ``document`` as JSON to ``url``; the outcome, e.g. 'delivered: HTTP 200 (attempt 1 of 3)'."""
    body = orjson.dumps(document)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    last = "not attempted"
    with httpx.Client(timeout=timeout, transport=transport, follow_redirects=False) as http:
        for attempt in range(1, attempts + 1):
            try:
                response = http.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                where = f"(attempt {attempt} of {attempts})"
                if response.is_success:
                    return f"delivered: HTTP {response.status_code} {where}"
                if response.status_code != 429 and response.status_code < 500:
                    return f"refused: HTTP {response.status_code} {where}"
                last = f"HTTP {response.status_code}"
            if attempt < attempts:
                time.sleep(backoff * 2 ** (attempt - 1))
    return f"failed after {attempts} attempt(s): {last}"


def webhook_sender(config: MonitorConfig) -> Callable[[str, Mapping[str, Any]], str]:
    """``post_json`` with the configured timeout and attempts."""

    def send(url: str, document: Mapping[str, Any]) -> str:
        return post_json(url, document, timeout=config.webhook_timeout_s, attempts=config.webhook_attempts)

    return send


def metrics_source(
    url: str, token: str | None, *, timeout: float = 2.0, transport: httpx.BaseTransport | None = None
) -> Callable[[], str]:
    """A callable that returns the text of ``<url>/metrics``, raising when it cannot."""
    target = url.rstrip("/") + "/metrics"
    headers = {"User-Agent": USER_AGENT, **({"Authorization": f"Bearer {token}"} if token else {})}

    def fetch() -> str:
        with httpx.Client(timeout=timeout, transport=transport) as http:
            response = http.get(target, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"GET {target} answered HTTP {response.status_code}: {response.text[:200]}")
        return response.text

    return fetch


def gateway_metrics(config: MonitorConfig, settings: Settings) -> Callable[[], str] | None:
    """The configured gateway's /metrics as a source, or None where no gateway URL is set."""
    if not config.gateway_url:
        return None
    return metrics_source(config.gateway_url, config.gateway_token(settings), timeout=config.webhook_timeout_s)
