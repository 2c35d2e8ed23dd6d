"""The admin API's token check per request, on a warm node: relay.admin.auth.TokenAuth.authenticate.

    python -m tests.bench.bench_token_auth [--requests 20000] [--rounds 5]

A real redis-server, a live admin token, its record cached (the subscription up): what every /api/v1
request pays before its route runs (Bearer parsing, the format and checksum check, SHA-256, the cache
lookup, the constant-time compare, the live check, the at-most-once-a-minute last-use note). Target: 20 us.
Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from relay.access.tokens import DIRECT_REDIS
from relay.admin.auth import TokenAuth
from relay.store.tokens import TokenStore
from tests.integration.helpers import storage_for
from tests.integration.redis_server import RedisServer


async def _measure(url: str, requests: int, rounds: int) -> list[float]:
    store = TokenStore(storage_for(url))
    auth = TokenAuth(store)
    following = asyncio.create_task(auth.run())
    while not auth.trusted:
        await asyncio.sleep(0.01)
    token, _ = await store.issue("bench", "admin", (), (), None, by=f"{DIRECT_REDIS}bench")
    await asyncio.sleep(0.1)  # its announcement in: the next lookup is cached
    header = f"Bearer {token}"
    await auth.authenticate(header, "127.0.0.1")
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(requests):
            await auth.authenticate(header, "127.0.0.1")
        out.append((time.perf_counter() - start) / requests * 1e6)
    auth.stop()
    await following
    await store.storage.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(Path(tmp) / "redis").start()
        try:
            us = asyncio.run(_measure(redis.url, args.requests, args.rounds))
        finally:
            redis.stop()
    print(f"token check, warm: median {statistics.median(us):.2f} us per request (rounds: "
          f"{', '.join(f'{u:.2f}' for u in us)}; target 20 us)")  # fmt: skip


if __name__ == "__main__":
    main()
