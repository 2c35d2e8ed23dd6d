"""The admin app in a real uvicorn server (on a thread of the test process) over a real redis-server, with a
break-glass admin token."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from relay.access.tokens import DIRECT_REDIS
from relay.admin.app import create_admin_app
from relay.config import Settings
from relay.store.tokens import TokenStore
from tests.integration.helpers import demo_environment, run_async, storage_for
from tests.integration.redis_server import RedisServer, free_port


class ServerThread:
    """A uvicorn server for `app` on a thread with its own event loop (uvicorn leaves signals alone there)."""

    def __init__(self, app: Starlette) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="admin-test-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the admin server did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@dataclass
class Api:
    client: httpx.Client
    redis: RedisServer
    root: str  # an admin token for every environment, made on Redis directly

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers.setdefault("Authorization", f"Bearer {token}")
        return self.client.request(method, path, headers=headers, **kwargs)

    def token(self, role: str, *, envs: tuple[str, ...] = (), flags: tuple[str, ...] = (), **body: Any) -> str:
        r = self.call("POST", "/api/v1/tokens", self.root,
                      json={"name": body.pop("name", f"{role}-user"), "role": role, "envs": list(envs),
                            "flags": list(flags), **body})  # fmt: skip
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


def break_glass_token(url: str, name: str = "root", expires: str = "60d") -> str:
    async def make() -> str:
        token, _ = await TokenStore(storage_for(url)).issue(name, "admin", (), (), expires, by=f"{DIRECT_REDIS}tests")
        return token

    return run_async(make())


@pytest.fixture
def api(redis_server: RedisServer) -> Iterator[Api]:
    demo_environment(redis_server.url, "prod")
    demo_environment(redis_server.url, "staging")
    root = break_glass_token(redis_server.url)
    app = create_admin_app(Settings(redis_url=redis_server.url), recheck_interval=0.2)
    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        yield Api(client, redis_server, root)
