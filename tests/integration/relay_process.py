"""A real relay node (`python -m relay serve`) in a subprocess, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.integration.redis_server import free_port


class RelayProcess:
    def __init__(self, redis_url: str, workdir: Path, source: Path | None = None, **settings: str) -> None:
        self.port = free_port()
        self.admin_port = free_port()  # each node's admin listener on a port of its own
        self.redis_url = redis_url
        self.workdir = workdir
        self.source = source  # another relay source tree to run (its `relay` package first on the path)
        self.settings = settings
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"relay-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self, timeout: float = 20) -> RelayProcess:
        env = {
            **{k: v for k, v in os.environ.items() if k != "RELAY_REDIS_URL"},
            **({"RELAY_REDIS_URL": self.redis_url} if self.redis_url else {}),
            "RELAY_PORT": str(self.port),
            "RELAY_ADMIN_LISTEN": f"127.0.0.1:{self.admin_port}",
            **{f"RELAY_{k.upper()}": v for k, v in self.settings.items()},
            **({"PYTHONPATH": str(self.source)} if self.source else {}),
        }
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "relay", "serve"], cwd=self.workdir, env=env, stdout=log, stderr=log
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"relay did not become ready:\n{self.log.read_text()}")

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc is None:
            return 0
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc = None
        return code
