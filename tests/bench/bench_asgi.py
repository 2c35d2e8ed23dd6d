"""Where an uncached evalx request's time goes, in process: relay's app and a bare Starlette app
returning a static body of the same size, both called directly as ASGI apps (no sockets, no HTTP
parsing), and relay's parts (decode the context, evaluate 100 flags, assemble the body) alone.

    python -m tests.bench.bench_asgi [--requests 3000] [--rounds 5]

The same 100 seeded flags and distinct contexts as tests/bench/bench_http.py; a real redis-server
holds them. Best of the rounds, apps alternating round by round. Not a test: nothing here asserts
a time.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.app import create_app
from relay.config import Settings
from relay.wire.clientside import decode_context, evalx_body, for_browsers
from tests.bench.bench_http import seeded_environment
from tests.integration.redis_server import RedisServer


def _scope(path: str) -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "root_path": "", "path": path, "raw_path": path.encode(), "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), (b"user-agent", b"bench")],
        "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1), "state": {},
    }  # fmt: skip


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _run(redis_url: str, requests: int, rounds: int) -> dict[str, float]:
    env_id, paths = await seeded_environment(redis_url, requests)
    app = create_app(Settings(response_cache_entries=0), redis_url=redis_url)
    inner: Starlette = app.app  # type: ignore[attr-defined]
    body_size = 0

    async def capture(message: dict[str, Any]) -> None:
        nonlocal body_size
        if message["type"] == "http.response.body":
            body_size = len(message["body"])

    async def discard(message: dict[str, Any]) -> None:
        pass

    async with inner.router.lifespan_context(inner):
        node = inner.state.node
        await app(_scope(paths[0]), _receive, capture)
        body = b"x" * body_size

        async def static(request: Request) -> Response:
            return Response(body, media_type="application/json")

        bare = Starlette(routes=[Route("/sdk/evalx/{env}/contexts/{ctx}", static)])
        rs = node.ruleset(node.environment_for_client_id(env_id))
        contexts = [p.rsplit("/", 1)[1] for p in paths]

        async def through(asgi: Any) -> None:
            for path in paths:
                await asgi(_scope(path), _receive, discard)

        async def parts() -> None:
            for c in contexts:
                evalx_body(rs.flags, rs.snapshot.evaluate_all(decode_context(c), for_browsers), False)

        async def decode() -> None:
            for c in contexts:
                decode_context(c)

        cases: dict[str, Callable[[], Awaitable[None]]] = {
            "bare Starlette, static body": lambda: through(bare),
            "relay evalx (cache off)": lambda: through(app),
            "relay: decode + evaluate + body": parts,
            "relay: decode the context": decode,
        }
        best = dict.fromkeys(cases, float("inf"))
        for _ in range(rounds):
            for name, case in cases.items():
                t0 = time.perf_counter()
                await case()
                best[name] = min(best[name], (time.perf_counter() - t0) / len(paths) * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000, help="distinct contexts, one request each per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(Path(tmp) / "redis").start()
        try:
            best = asyncio.run(_run(redis.url, args.requests, args.rounds))
        finally:
            redis.stop()
    print(f"per request, best of {args.rounds} rounds of {args.requests} (µs):")
    for name, us in best.items():
        print(f"  {name:<34} {us:8.1f}")


if __name__ == "__main__":
    main()
