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
from contextlib import contextmanager
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

    def __init__(self, relay_url: str, client_id: str, page: str = "page.html", **fill: str) -> None:
        self.reports: list[dict[str, Any]] = []
        self.arrived: list[float] = []
        html = (BROWSER_DIR / page).read_text().replace("__RELAY__", relay_url).replace("__CLIENT_ID__", client_id)
        for name, value in fill.items():
            html = html.replace(f"__{name.upper()}__", value)
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


@contextmanager
def chromium_on(url: str, profile: Path) -> Iterator[None]:
    chromium = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",  # type: ignore[list-item]
         "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync",
         f"--user-data-dir={profile}", "--remote-debugging-port=0", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        chromium.kill()
        chromium.wait()


@pytest.fixture
def browser_setup(redis_server: RedisServer, tmp_path: Path) -> Iterator[tuple[Page, RedisServer]]:
    secrets = demo_environment(redis_server.url)
    relay = RelayProcess(redis_server.url, tmp_path / "relay").start()
    page = Page(relay.url, secrets["client_side_id"])
    try:
        with chromium_on(page.url, tmp_path / "chromium"):
            yield page, redis_server
    finally:
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


SECRET = "a-test-secret-key-of-at-least-32-characters"


def test_secure_mode_in_a_real_browser_serves_the_right_hash_and_refuses_a_forged_one(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """The JS SDK's `hash` option (what a server renders into the page with its SDK's
    `secure_mode_hash`) against an environment in secure mode: served and streamed; forged: refused."""
    from relay.access.environments import secure_mode_hash
    from relay.access.sealing import sealer_for
    from relay.cli.demo import demo_document
    from relay.store.writes import WritePath
    from tests.integration.helpers import run_async, storage_for

    async def setup() -> dict[str, str]:
        admin = WritePath(storage_for(redis_server.url), actor="test", sealer=sealer_for(SECRET))
        _, secrets = await admin.create_environment("prod", secure_mode=True)
        await admin.import_items("prod", demo_document())
        return secrets

    secrets = run_async(setup())
    relay = RelayProcess(redis_server.url, tmp_path / "relay", secret_key=SECRET).start()
    page = Page(relay.url, secrets["client_side_id"], "secure.html", hash=secure_mode_hash(secrets["sdk_key"], "zed"))
    try:
        with chromium_on(page.url, tmp_path / "chromium"):
            ready, _ = page.wait("ld", "ready")
            assert ready["value"] is True and "internal-debug-panel" not in ready["all"]
            refused, _ = page.wait("forged", "refused")
            assert "400" in refused["error"] or "h parameter" in refused["error"], refused
            time.sleep(0.5)
            assert not any(r.get("source") == "forged" and r.get("event") == "initialized" for r in page.reports)

            seen = len(page.reports)
            result = CliRunner().invoke(
                main, ["flags", "toggle", "checkout-kill-switch", "--off", "--env", "prod"],
                env={"RELAY_REDIS_URL": redis_server.url},
            )  # fmt: skip
            assert result.exit_code == 0, result.output
            change, _ = page.wait("ld", "change", after=seen)  # the stream, opened with `h`, too
            assert change["value"] is False
    finally:
        page.server.shutdown()
        page.server.server_close()
        relay.stop()
