"""End to end in a real browser: LaunchDarkly's JS SDK and OpenFeature's OFREP web provider, in
headless Chromium, on a page from another origin, against a real relay node.

Needs Debian's `chromium` and the npm packages in tests/browser (`.ci/run` installs both; `make
test` runs `npm ci` when npm is there). Skips, saying which is missing, where they are absent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from relay.cli import main
from tests.integration.helpers import demo_environment
from tests.integration.redis_server import RedisServer
from tests.integration.relay_process import RelayProcess

BROWSER_DIR = Path(__file__).resolve().parents[1] / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed: apt-get install chromium chromium-driver"),
    pytest.mark.skipif(
        not (BROWSER_DIR / "node_modules" / "launchdarkly-js-client-sdk").is_dir(),
        reason="browser SDKs not installed: npm ci --prefix tests/browser",
    ),
]


class Page:
    """Serves the test page and the SDK files, and collects what the page reports."""

    def __init__(self, relay_url: str, client_id: str) -> None:
        self.reports: list[dict[str, Any]] = []
        self.arrived: list[float] = []
        html = (
            (BROWSER_DIR / "page.html").read_text().replace("__RELAY__", relay_url).replace("__CLIENT_ID__", client_id)
        )
        page = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/":
                    body, kind = html.encode(), "text/html"
                else:
                    path = (BROWSER_DIR / self.path.lstrip("/")).resolve()
                    if BROWSER_DIR not in path.parents or not path.is_file():
                        self.send_error(404)
                        return
                    body, kind = path.read_bytes(), "text/javascript"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                data = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                page.reports.append(data)
                page.arrived.append(time.monotonic())
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, source: str, event: str, timeout: float = 20, after: int = 0) -> tuple[dict[str, Any], float]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, r in enumerate(self.reports[after:], start=after):
                if r.get("source") == "page" or r.get("event") == "failed":
                    raise AssertionError(f"the page reported a failure: {r}")
                if r.get("source") == source and r.get("event") == event:
                    return r, self.arrived[i]
            time.sleep(0.01)
        raise AssertionError(f"no {source} {event} report; got {self.reports}")


@pytest.fixture
def browser_setup(redis_server: RedisServer, tmp_path: Path) -> Iterator[tuple[Page, RedisServer]]:
    secrets = demo_environment(redis_server.url)
    relay = RelayProcess(redis_server.url, tmp_path / "relay").start()
    page = Page(relay.url, secrets["client_side_id"])
    chromium = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",  # type: ignore[list-item]
         "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chromium'}", "--remote-debugging-port=0", page.url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield page, redis_server
    finally:
        chromium.kill()
        chromium.wait()
        page.server.shutdown()
        page.server.server_close()
        relay.stop()


def test_browser_sdks_show_flags_and_follow_the_kill_switch(browser_setup: tuple[Page, RedisServer]) -> None:
    page, redis = browser_setup
    ready, _ = page.wait("ld", "ready")
    assert ready["value"] is True
    assert ready["all"]["student-discount"] in ("banner-a", "banner-b")
    assert "internal-debug-panel" not in ready["all"]  # never shown to a browser
    ofrep, _ = page.wait("ofrep", "ready")
    assert ofrep["value"] is True and ofrep["reason"] == "STATIC", ofrep
    assert ofrep["discount"] == ready["all"]["student-discount"]
    assert ofrep["hidden"] == "FLAG_NOT_FOUND"

    seen = len(page.reports)
    result = CliRunner().invoke(
        main, ["flags", "toggle", "checkout-kill-switch", "--off", "--env", "prod"], env={"RELAY_REDIS_URL": redis.url}
    )
    toggled = time.monotonic()
    assert result.exit_code == 0, result.output
    change, arrived = page.wait("ld", "change", after=seen)
    assert change["value"] is False
    assert arrived - toggled < 1.0, f"the browser updated {arrived - toggled:.3f} s after the toggle"
    ofrep_change, _ = page.wait("ofrep", "change", after=seen)
    assert ofrep_change["value"] is False and ofrep_change["reason"] == "DISABLED", ofrep_change
