"""A change channel watched from a thread of its own: the load-testing tools' "commit seen" clock.

Apart from relay.store.storage because it is the one synchronous Redis client in relay: its
timestamps must not wait for any event loop's scheduling.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import redis as sync_redis


def watch_channel(url: str, channel: str, on_message: Callable[[bytes, float], None], password: str | None = None):  # type: ignore[no-untyped-def]
    """Subscribe on a thread of its own and call `on_message(data, monotonic time)` the moment each
    message arrives — a timestamp no event loop's scheduling can delay (the load-testing tools'
    "commit seen" time). Returns a function that stops it."""
    client = sync_redis.Redis.from_url(url, password=password)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    stopping = threading.Event()

    def loop() -> None:
        while not stopping.is_set():
            message = pubsub.get_message(timeout=0.5)
            if message is not None:
                on_message(message["data"], time.monotonic())

    thread = threading.Thread(target=loop, name="relay-commit-watch", daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        thread.join(2)
        pubsub.close()
        client.close()

    return stop
