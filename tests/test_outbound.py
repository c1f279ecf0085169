"""Outbound HTTP of the monitor loop over real sockets: webhook retries and outcomes, scraping a /metrics page."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from shipyard import outbound
from shipyard.monitoring.config import MonitorConfig
from shipyard.settings import Settings
from tests.conftest import free_port


@dataclass
class Server:
    url: str
    statuses: list[int]  # answered in turn; the last one repeats
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path, authorization


@pytest.fixture
def server() -> Iterator[Server]:
    found = Server(url="", statuses=[200])

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, body: bytes) -> None:
            found.seen.append((self.command, self.path, self.headers.get("Authorization")))
            status = found.statuses.pop(0) if len(found.statuses) > 1 else found.statuses[0]
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self._answer(b"")

        def do_GET(self) -> None:
            self._answer(b"# TYPE up gauge\nup 1.0\n")

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield found
    httpd.shutdown()
    httpd.server_close()


def test_a_webhook_is_retried_on_5xx_and_429_until_it_is_delivered(server: Server) -> None:
    server.statuses = [503, 429, 202]
    outcome = outbound.post_json(f"{server.url}/hook", {"alert": "x"}, attempts=3, backoff=0.01)
    assert outcome == "delivered: HTTP 202 (attempt 3 of 3)"
    assert [method for method, _, _ in server.seen] == ["POST"] * 3


def test_a_refusal_is_not_retried_and_a_dead_address_fails_quietly(server: Server) -> None:
    server.statuses = [403]
    assert outbound.post_json(f"{server.url}/hook", {}, attempts=3, backoff=0.01) == "refused: HTTP 403 (attempt 1 of 3)"
    assert len(server.seen) == 1
    dead = outbound.post_json(f"http://127.0.0.1:{free_port()}/", {}, attempts=2, backoff=0.01)
    assert dead.startswith("failed after 2 attempt(s): ConnectError")


def test_the_gateway_metrics_are_fetched_with_the_token(server: Server, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("sy_secret\n")
    config = MonitorConfig(gateway_url=server.url + "/", gateway_token_file=token_file)
    source = outbound.gateway_metrics(config, Settings(home=tmp_path))
    assert source is not None
    assert source() == "# TYPE up gauge\nup 1.0\n"
    assert server.seen[-1] == ("GET", "/metrics", "Bearer sy_secret")
    server.statuses = [401]
    with pytest.raises(RuntimeError, match="answered HTTP 401"):
        source()
    assert outbound.gateway_metrics(MonitorConfig(), Settings(home=tmp_path)) is None


def test_the_scrape_token_defaults_to_the_admin_token_file(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert MonitorConfig().gateway_token(settings) is None
    settings.admin_token_path.parent.mkdir(parents=True, exist_ok=True)
    settings.admin_token_path.write_text("sy_admin\n")
    assert MonitorConfig().gateway_token(settings) == "sy_admin"
    assert MonitorConfig().gateway_token(Settings(home=tmp_path, token="sy_env")) == "sy_env"
