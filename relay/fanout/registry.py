"""The one registry of open streams, and its one way of dropping a client that is not keeping up.

Both fan-outs keep their connections here, grouped by a key of their own: the server-stream hub
by (environment, stream kind), the evaluated client streams by context group. Keep-alives, ending
streams (at shutdown, or an environment's at a new epoch) and dropping a stream whose socket
buffer is full are the same for both, so they are written once, here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Generic, Protocol, TypeVar

logger = logging.getLogger(__name__)


class Stream(Protocol):
    """What the registry needs of a stream connection (relay.fanout.hub.Sink is one)."""

    env: str
    kind: str
    write: Callable[[bytes], bool]  # False: the client is not keeping up
    end: Callable[[], None]


K = TypeVar("K", bound=Hashable)
S = TypeVar("S", bound=Stream)


class Registry(Generic[K, S]):
    """Open streams by key. Subclasses say which environment a key belongs to (`_env_of`), and may
    forget what they hold for a key once its last stream is gone (`_emptied`)."""

    def __init__(self) -> None:
        self._sinks: dict[K, set[S]] = {}
        self.dropped = 0  # streams dropped for not keeping up

    def _env_of(self, key: K) -> str:
        raise NotImplementedError

    def _emptied(self, key: K) -> None:
        """Called when `key` holds no stream any more (after a removal)."""

    def _add(self, key: K, sink: S) -> None:
        sinks = self._sinks.get(key)
        if sinks is None:
            sinks = self._sinks[key] = set()
        sinks.add(sink)

    def _remove(self, key: K, sink: S) -> None:
        sinks = self._sinks.get(key)
        if sinks is not None:
            sinks.discard(sink)
            if sinks:
                return
            del self._sinks[key]
        self._emptied(key)

    def _drop(self, key: K, sink: S) -> None:
        """End a stream whose client is not reading: its SDK reconnects and gets a fresh snapshot."""
        self.dropped += 1
        self._remove(key, sink)
        sink.end()
        logger.info("dropped a %s stream on %s: its socket buffer is full", sink.kind, sink.env)

    def heartbeat(self, payload: bytes) -> None:
        """Write a keep-alive to every stream (one timer for all of them), dropping the stuck ones."""
        for key, sinks in list(self._sinks.items()):
            for sink in list(sinks):
                if not sink.write(payload):
                    self._drop(key, sink)

    def close_all(self, env: str | None = None) -> None:
        """End every stream (shutdown), or every stream of one environment (its SDKs reconnect)."""
        for key, sinks in list(self._sinks.items()):
            if env is not None and self._env_of(key) != env:
                continue
            for sink in list(sinks):
                self._remove(key, sink)
                sink.end()
