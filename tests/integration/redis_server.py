"""A real redis-server on a free loopback port, for tests (never a mock)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from relay.store.embedded import find_redis_server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    def __init__(
        self, directory: Path, *, persistent: bool = False, port: int | None = None, binary: str | None = None,
        args: Sequence[str] = (), password: str | None = None,
    ) -> None:  # fmt: skip
        self.dir = directory
        self.port = port or free_port()
        self.persistent = persistent
        self.binary = binary  # default: relay's own (find_redis_server)
        self.args = tuple(args)  # more redis-server options: "--maxmemory", "1mb", …
        self.password = password  # requirepass
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.dir.mkdir(parents=True, exist_ok=True)
        aof = "yes" if self.persistent else "no"
        args = [self.binary or find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.dir), "--save", "", "--appendonly", aof, "--appendfsync", "always",
                *(("--requirepass", self.password) if self.password else ()), *self.args]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ping = f"AUTH {self.password}\r\nPING\r\n".encode() if self.password else b"PING\r\n"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(ping)
                    if s.recv(32).replace(b"+OK\r\n", b"", 1).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        """SIGKILL: no goodbye to clients."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
